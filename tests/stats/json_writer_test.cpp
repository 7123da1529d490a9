#include "stats/json_writer.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace cacheproxy::stats {
namespace {

TEST(JsonWriterTest, ObjectsArraysAndCommas) {
    JsonWriter w;
    w.begin_object();
    w.member("a", 1);
    w.key("list").begin_array().value(1u).value("x").value(true).null().end_array();
    w.key("empty").begin_object().end_object();
    w.key("nested").begin_object().member("b", -2).end_object();
    w.end_object();
    EXPECT_EQ(w.str(), R"({"a":1,"list":[1,"x",true,null],"empty":{},"nested":{"b":-2}})");
}

TEST(JsonWriterTest, StringsAreEscaped) {
    std::string out;
    append_json_string(out, "q\"b\\s/\n\r\t\b\f\x01\x1f<script>&");
    EXPECT_EQ(out, R"("q\"b\\s/\n\r\t\b\f\u0001\u001f\u003cscript\u003e\u0026")");
}

TEST(JsonWriterTest, DoublesAreFiniteAndShort) {
    JsonWriter w;
    w.begin_array()
        .value(0.5)
        .value(1.0 / 3.0)
        .value(-0.0)
        .value(std::numeric_limits<double>::quiet_NaN())
        .value(std::numeric_limits<double>::infinity())
        .value(123456789.0)
        .end_array();
    EXPECT_EQ(w.str(), "[0.5,0.333333,0,null,null,123456789]");
}

TEST(JsonWriterTest, LargeCountersStayExact) {
    JsonWriter w;
    w.begin_array().value(std::numeric_limits<std::uint64_t>::max()).end_array();
    EXPECT_EQ(w.str(), "[18446744073709551615]");
}

}  // namespace
}  // namespace cacheproxy::stats
