// The little JSON echo-bench needs: a reader for the server's /stats document and a writer for
// its own report. Our own code; no JSON library is a dependency of the project.
//
// Contract: parse() accepts RFC 8259 JSON (objects, arrays, strings with escapes, numbers, true,
// false, null) up to a nesting depth of 64 and returns false with a reason otherwise. Numbers keep
// their text, so 64-bit counters read back exactly through as_u64(). JsonWriter emits compact,
// valid JSON; the caller pairs begin/end calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mr::bench {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  std::string text;  // a string's value, or a number's text
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;

  // The member named `key` of an object, or nullptr.
  const JsonValue* find(std::string_view key) const;
  bool is_number() const { return type == Type::kNumber; }
  double as_double(double fallback = 0) const;
  // A non-negative integer number, or `fallback`.
  std::uint64_t as_u64(std::uint64_t fallback = 0) const;
};

bool parse_json(std::string_view text, JsonValue& out, std::string& error);

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view text);
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(double number);
  JsonWriter& value(std::uint64_t number);
  JsonWriter& value(std::int64_t number);
  JsonWriter& value(unsigned number) { return value(static_cast<std::uint64_t>(number)); }
  JsonWriter& value(int number) { return value(static_cast<std::int64_t>(number)); }
  JsonWriter& value(bool flag);
  JsonWriter& null();
  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }
  const std::string& str() const { return out_; }

 private:
  void separate();
  std::string out_;
  bool need_comma_ = false;
};

}  // namespace mr::bench
