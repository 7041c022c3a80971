// Parsing option values, shared by echo-server's and echo-bench's option tables.
//
// Contract: a Setter<Options> stores a value given as text into one field of an options struct
// and returns "", or leaves the field alone and returns the phrase that says what is allowed
// ("an integer from 0 to 256"); the caller builds the one-line error around it (name, value,
// source). Start-up only; nothing here is on a data path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mr {

template <typename Options>
using Setter = std::function<std::string(Options&, const std::string&)>;

// "" and `out` set when `text` is a whole decimal integer in [lo, hi].
std::string parse_integer(std::string_view text, std::uint64_t lo, std::uint64_t hi,
                          std::uint64_t& out);
// "" and `out` set for true/false, yes/no, on/off, 1/0 (any case).
std::string parse_bool(std::string_view text, bool& out);

template <typename Options, typename T>
Setter<Options> integer_option(T Options::*field, std::uint64_t lo, std::uint64_t hi) {
  return [field, lo, hi](Options& o, const std::string& text) -> std::string {
    std::uint64_t parsed = 0;
    std::string allowed = parse_integer(text, lo, hi, parsed);
    if (allowed.empty()) o.*field = static_cast<T>(parsed);
    return allowed;
  };
}

template <typename Options>
Setter<Options> bool_option(bool Options::*field) {
  return [field](Options& o, const std::string& text) { return parse_bool(text, o.*field); };
}

}  // namespace mr
