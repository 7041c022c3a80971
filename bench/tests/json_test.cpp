#include "json.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace mr::bench {
namespace {

TEST(Json, ReadsNestedDocumentsWithEveryKindOfValue) {
  JsonValue v;
  std::string error;
  ASSERT_TRUE(parse_json(
      R"( {"a": [1, -2.5e3, true, false, null], "b": {"c": "x\"y\\z\n\u00e9\ud83d\ude00"}} )", v,
      error))
      << error;
  ASSERT_EQ(v.type, JsonValue::Type::kObject);
  const JsonValue* a = v.find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 5U);
  EXPECT_EQ(a->items[0].as_u64(), 1U);
  EXPECT_DOUBLE_EQ(a->items[1].as_double(), -2500.0);
  EXPECT_TRUE(a->items[2].boolean);
  EXPECT_EQ(a->items[4].type, JsonValue::Type::kNull);
  EXPECT_EQ(v.find("b")->find("c")->text, "x\"y\\z\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, SixtyFourBitCountersReadBackExactly) {
  JsonValue v;
  std::string error;
  ASSERT_TRUE(
      parse_json(R"({"bytes": 18446744073709551615, "small": 9007199254740993})", v, error));
  EXPECT_EQ(v.find("bytes")->as_u64(), 18446744073709551615ULL);
  EXPECT_EQ(v.find("small")->as_u64(), 9007199254740993ULL);
}

TEST(Json, MalformedDocumentsAreRefusedWithAReason) {
  for (const char* text : {"", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "tru", "\"unterminated",
                           "{} extra", "01x", "[\"\\q\"]"}) {
    JsonValue v;
    std::string error;
    EXPECT_FALSE(parse_json(text, v, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

TEST(Json, WhatTheWriterWritesTheReaderReads) {
  JsonWriter w;
  w.begin_object()
      .field("name", "quote\" back\\slash\ttab")
      .field("count", std::uint64_t{18446744073709551615ULL})
      .field("ratio", 1.25)
      .field("flag", true);
  w.key("list").begin_array().value(1).value(-2).null().end_array();
  w.key("empty").begin_object().end_object();
  w.end_object();
  JsonValue v;
  std::string error;
  ASSERT_TRUE(parse_json(w.str(), v, error)) << error << "\n" << w.str();
  EXPECT_EQ(v.find("name")->text, "quote\" back\\slash\ttab");
  EXPECT_EQ(v.find("count")->as_u64(), 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(v.find("ratio")->as_double(), 1.25);
  EXPECT_TRUE(v.find("flag")->boolean);
  EXPECT_EQ(v.find("list")->items.size(), 3U);
  EXPECT_EQ(v.find("empty")->members.size(), 0U);
}

TEST(Json, InfinityIsWrittenAsNull) {
  JsonWriter w;
  w.begin_array().value(std::numeric_limits<double>::infinity()).end_array();
  EXPECT_EQ(w.str(), "[null]");
}

}  // namespace
}  // namespace mr::bench
