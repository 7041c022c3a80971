#include "config/option_values.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace mr {

std::string parse_integer(std::string_view text, std::uint64_t lo, std::uint64_t hi,
                          std::uint64_t& out) {
  std::uint64_t parsed = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, parsed);
  if (text.empty() || ec != std::errc() || ptr != end || parsed < lo || parsed > hi) {
    return fmt::format("an integer from {} to {}", lo, hi);
  }
  out = parsed;
  return "";
}

std::string parse_bool(std::string_view text, bool& out) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (lower == "true" || lower == "yes" || lower == "on" || lower == "1") {
    out = true;
  } else if (lower == "false" || lower == "no" || lower == "off" || lower == "0") {
    out = false;
  } else {
    return "true or false (also yes/no, on/off, 1/0)";
  }
  return "";
}

}  // namespace mr
