// Serializer<T>: round trips of every built-in type, records packed in one buffer, and the errors
// a truncated or over-long buffer gives.
#include "sluice/serializer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using ::testing::HasSubstr;

template <class T>
T RoundTrip(const T& v) {
  return deserialize<T>(serialize(v));
}

struct Bid {
  int64_t auction = 0;
  std::string bidder;
  double price = 0;
  std::vector<int32_t> tags;
  SLUICE_FIELDS(auction, bidder, price, tags)
  bool operator==(const Bid&) const = default;
};

struct Auction {
  std::string name;
  std::optional<Bid> best;
  std::map<std::string, Bid> by_bidder;
  SLUICE_FIELDS(name, best, by_bidder)
  bool operator==(const Auction&) const = default;
};

enum class Color : uint8_t { kRed = 1, kGreen = 2, kBlue = 200 };

TEST(SerializerTest, IntegersRoundTripAtTheirLimits) {
  EXPECT_EQ(RoundTrip<int8_t>(std::numeric_limits<int8_t>::min()),
            std::numeric_limits<int8_t>::min());
  EXPECT_EQ(RoundTrip<uint8_t>(255), 255);
  EXPECT_EQ(RoundTrip<int16_t>(-12345), -12345);
  EXPECT_EQ(RoundTrip<uint16_t>(65535), 65535);
  EXPECT_EQ(RoundTrip<int32_t>(std::numeric_limits<int32_t>::min()),
            std::numeric_limits<int32_t>::min());
  EXPECT_EQ(RoundTrip<uint32_t>(0xdeadbeefu), 0xdeadbeefu);
  EXPECT_EQ(RoundTrip<int64_t>(std::numeric_limits<int64_t>::min()),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(RoundTrip<int64_t>(std::numeric_limits<int64_t>::max()),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(RoundTrip<uint64_t>(std::numeric_limits<uint64_t>::max()),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(RoundTrip<int64_t>(0), 0);
  EXPECT_EQ(RoundTrip<char>('x'), 'x');
}

TEST(SerializerTest, FixedWidthEncodingOfArithmeticTypes) {
  EXPECT_EQ(serialize<int32_t>(7).size(), 4u);
  EXPECT_EQ(serialize<int64_t>(7).size(), 8u);
  EXPECT_EQ(serialize<double>(7).size(), 8u);
  EXPECT_EQ(serialize<bool>(true).size(), 1u);
}

TEST(SerializerTest, FloatingPointAndBoolRoundTrip) {
  EXPECT_EQ(RoundTrip<double>(3.141592653589793), 3.141592653589793);
  EXPECT_EQ(RoundTrip<double>(-0.0), 0.0);
  EXPECT_TRUE(std::signbit(RoundTrip<double>(-0.0)));
  EXPECT_EQ(RoundTrip<double>(std::numeric_limits<double>::infinity()),
            std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(RoundTrip<double>(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_EQ(RoundTrip<double>(std::numeric_limits<double>::denorm_min()),
            std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(RoundTrip<float>(1.5f), 1.5f);
  EXPECT_EQ(RoundTrip<bool>(true), true);
  EXPECT_EQ(RoundTrip<bool>(false), false);
}

TEST(SerializerTest, EnumsRoundTrip) {
  EXPECT_EQ(RoundTrip(Color::kBlue), Color::kBlue);
  EXPECT_EQ(RoundTrip(Color::kRed), Color::kRed);
  EXPECT_EQ(serialize(Color::kGreen).size(), 1u);
}

TEST(SerializerTest, StringsRoundTrip) {
  EXPECT_EQ(RoundTrip(std::string()), "");
  EXPECT_EQ(serialize(std::string()).size(), 1u);  // just the length
  EXPECT_EQ(RoundTrip(std::string("hello")), "hello");

  std::string with_nuls("a\0b\0\0c", 6);
  std::string back = RoundTrip(with_nuls);
  EXPECT_EQ(back.size(), 6u);
  EXPECT_EQ(back, with_nuls);

  std::string utf8 = "gr\xc3\xbc\xc3\x9f dich, \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8c\x8a";
  EXPECT_EQ(RoundTrip(utf8), utf8);

  // Large enough that the length needs a multi-byte varint.
  std::string large(3 * 1000 * 1000 + 17, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 131 % 251);
  std::string bytes = serialize(large);
  EXPECT_EQ(bytes.size(), large.size() + 4);  // 3'000'017 < 2^28: a 4-byte varint
  EXPECT_EQ(deserialize<std::string>(bytes), large);
}

TEST(SerializerTest, StringLengthVarintBoundaries) {
  for (size_t n : {0u, 1u, 127u, 128u, 16383u, 16384u}) {
    std::string s(n, 'q');
    size_t varint = n < 128 ? 1 : n < 16384 ? 2 : 3;
    EXPECT_EQ(serialize(s).size(), n + varint) << n;
    EXPECT_EQ(RoundTrip(s), s) << n;
  }
}

TEST(SerializerTest, PairsAndTuplesRoundTrip) {
  std::pair<std::string, int64_t> p{"word", 42};
  EXPECT_EQ(RoundTrip(p), p);

  std::tuple<int32_t, std::string, double, bool> t{-7, "x,y", 2.5, true};
  EXPECT_EQ(RoundTrip(t), t);

  std::tuple<> empty;
  EXPECT_EQ(serialize(empty).size(), 0u);
  EXPECT_EQ(RoundTrip(empty), empty);

  std::pair<const std::string, int> cp{"const key", 3};
  auto back = RoundTrip(cp);
  EXPECT_EQ(back.first, "const key");
  EXPECT_EQ(back.second, 3);
}

TEST(SerializerTest, VectorsRoundTrip) {
  EXPECT_EQ(RoundTrip(std::vector<int64_t>{}), std::vector<int64_t>{});
  std::vector<int64_t> ints;
  for (int64_t i = -500; i < 500; ++i) ints.push_back(i * 1000003);
  EXPECT_EQ(RoundTrip(ints), ints);

  std::vector<std::string> strs{"", "a", std::string("\0", 1), "longer string"};
  EXPECT_EQ(RoundTrip(strs), strs);
}

TEST(SerializerTest, OptionalsRoundTrip) {
  EXPECT_EQ(RoundTrip(std::optional<int32_t>()), std::nullopt);
  EXPECT_EQ(RoundTrip(std::optional<int32_t>(0)), std::optional<int32_t>(0));
  EXPECT_EQ(RoundTrip(std::optional<std::string>("here")), std::optional<std::string>("here"));
  EXPECT_EQ(serialize(std::optional<int32_t>()).size(), 1u);
  EXPECT_EQ(serialize(std::optional<int32_t>(5)).size(), 5u);
}

TEST(SerializerTest, MapsRoundTrip) {
  std::map<std::string, int64_t> m{{"a", 1}, {"b", -2}, {"", 0}, {"zzz", 1LL << 40}};
  EXPECT_EQ(RoundTrip(m), m);
  EXPECT_EQ(RoundTrip(std::map<int, int>{}), (std::map<int, int>{}));
}

TEST(SerializerTest, DeserializingIntoAFilledContainerReplacesIt) {
  std::string bytes = serialize(std::vector<int32_t>{1, 2});
  DataInput in(bytes);
  std::vector<int32_t> v{9, 9, 9, 9};
  Serializer<std::vector<int32_t>>::read(in, v);
  EXPECT_EQ(v, (std::vector<int32_t>{1, 2}));

  std::string mbytes = serialize(std::map<int, int>{{1, 1}});
  DataInput min(mbytes);
  std::map<int, int> m{{5, 5}, {6, 6}};
  Serializer<std::map<int, int>>::read(min, m);
  EXPECT_EQ(m, (std::map<int, int>{{1, 1}}));

  std::string obytes = serialize(std::optional<int>());
  DataInput oin(obytes);
  std::optional<int> o = 3;
  Serializer<std::optional<int>>::read(oin, o);
  EXPECT_FALSE(o.has_value());
}

TEST(SerializerTest, NestedCombinationsRoundTrip) {
  using Nested = std::map<std::string, std::vector<std::pair<int32_t, std::optional<std::string>>>>;
  Nested n{{"k1", {{1, "one"}, {2, std::nullopt}}}, {"k2", {}}, {"k3", {{-3, ""}}}};
  EXPECT_EQ(RoundTrip(n), n);

  std::vector<std::tuple<std::string, std::map<int, std::vector<double>>>> deep{
      {"x", {{1, {1.0, 2.0}}, {2, {}}}}, {"", {}}};
  EXPECT_EQ(RoundTrip(deep), deep);

  std::optional<std::vector<std::optional<int>>> ov = std::vector<std::optional<int>>{1, {}, 3};
  EXPECT_EQ(RoundTrip(ov), ov);
}

TEST(SerializerTest, UserStructsWithSluiceFieldsRoundTrip) {
  Bid b{17, "alice", 99.5, {1, 2, 3}};
  EXPECT_EQ(RoundTrip(b), b);
  // Encoded as its fields in order, nothing more.
  EXPECT_EQ(serialize(b), serialize(std::make_tuple(int64_t{17}, std::string("alice"), 99.5,
                                                    std::vector<int32_t>{1, 2, 3})));

  Auction a{"lamp", Bid{1, "bob", 3.0, {}}, {{"carol", Bid{2, "carol", 4.0, {7}}}, {"dan", Bid{}}}};
  EXPECT_EQ(RoundTrip(a), a);
  Auction none{"empty", std::nullopt, {}};
  EXPECT_EQ(RoundTrip(none), none);
  EXPECT_EQ(RoundTrip(std::vector<Bid>{b, Bid{}, b}), (std::vector<Bid>{b, Bid{}, b}));
}

TEST(SerializerTest, SeveralRecordsInOneBufferReadBackInOrder) {
  std::string buf;
  DataOutput out(buf);
  for (int i = 0; i < 100; ++i) {
    std::pair<std::string, int64_t> p{std::to_string(i), i * i};
    p.first.insert(0, 1, 'w');
    Serializer<std::pair<std::string, int64_t>>::write(out, p);
  }
  Serializer<Bid>::write(out, Bid{5, "last", 1.25, {9}});

  DataInput in(buf);
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(in.at_end());
    std::pair<std::string, int64_t> p;
    Serializer<std::pair<std::string, int64_t>>::read(in, p);
    EXPECT_EQ(p.first, "w" + std::to_string(i));
    EXPECT_EQ(p.second, i * i);
  }
  Bid b;
  Serializer<Bid>::read(in, b);
  EXPECT_EQ(b, (Bid{5, "last", 1.25, {9}}));
  EXPECT_TRUE(in.at_end());
  EXPECT_EQ(in.remaining(), 0u);
}

// Every proper prefix of a value's encoding must fail with SerializationError, never crash or
// return a value.
template <class T>
void ExpectEveryPrefixThrows(const T& v) {
  std::string bytes = serialize(v);
  ASSERT_FALSE(bytes.empty());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(deserialize<T>(std::string_view(bytes.data(), n)), SerializationError)
        << "prefix of " << n << " of " << bytes.size() << " bytes";
  }
}

TEST(SerializerTest, TruncatedBuffersThrowSerializationError) {
  ExpectEveryPrefixThrows<int64_t>(123456789);
  ExpectEveryPrefixThrows<double>(1.5);
  ExpectEveryPrefixThrows(std::string("truncated string"));
  ExpectEveryPrefixThrows(std::string(300, 'z'));  // two-byte length
  ExpectEveryPrefixThrows(std::make_pair(std::string("k"), int32_t{1}));
  ExpectEveryPrefixThrows(std::make_tuple(int32_t{1}, std::string("two"), 3.0));
  ExpectEveryPrefixThrows(std::vector<int32_t>{1, 2, 3});
  ExpectEveryPrefixThrows(std::optional<std::string>("x"));
  ExpectEveryPrefixThrows(std::map<std::string, int>{{"a", 1}, {"b", 2}});
  ExpectEveryPrefixThrows(Bid{1, "bidder", 2.0, {4, 5}});
}

TEST(SerializerTest, TruncationErrorIsARuntimeErrorWithAMessage) {
  std::string bytes = serialize(std::string("abcdef"));
  bytes.pop_back();
  try {
    deserialize<std::string>(bytes);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(dynamic_cast<const SerializationError*>(&e), nullptr);
    EXPECT_THAT(e.what(), HasSubstr("truncated"));
  }
}

TEST(SerializerTest, HugeLengthsAreRejectedWithoutAllocating) {
  // A varint length of 2^40 in front of a few bytes.
  std::string bytes;
  DataOutput out(bytes);
  out.write_varint(1ULL << 40);
  bytes += "abc";
  EXPECT_THROW(deserialize<std::string>(bytes), SerializationError);
  EXPECT_THROW(deserialize<std::vector<int64_t>>(bytes), SerializationError);
  EXPECT_THROW((deserialize<std::map<int, int>>(bytes)), SerializationError);
}

TEST(SerializerTest, MalformedVarintThrows) {
  // Eleven continuation bytes: longer than any 64-bit varint.
  std::string bytes(11, static_cast<char>(0x80));
  bytes += '\x01';
  EXPECT_THROW(deserialize<std::string>(bytes), SerializationError);
}

TEST(SerializerTest, VarintsRoundTrip) {
  for (uint64_t v : std::vector<uint64_t>{0, 1, 127, 128, 300, (1ULL << 35) + 5,
                                          std::numeric_limits<uint64_t>::max()}) {
    std::string buf;
    DataOutput out(buf);
    out.write_varint(v);
    DataInput in(buf);
    EXPECT_EQ(in.read_varint(), v);
    EXPECT_TRUE(in.at_end());
  }
}

TEST(SerializerTest, TrailingBytesAreDetected) {
  std::string bytes = serialize<int32_t>(5) + "x";
  try {
    deserialize<int32_t>(bytes);
    FAIL() << "trailing byte not detected";
  } catch (const SerializationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("trailing"));
  }
  EXPECT_THROW(deserialize<std::string>(serialize(std::string("ab")) + std::string(1, '\0')),
               SerializationError);
  EXPECT_THROW(deserialize<Bid>(serialize(Bid{}) + serialize(Bid{})), SerializationError);
  // Reading the wrong, shorter type leaves bytes over.
  EXPECT_THROW(deserialize<int32_t>(serialize<int64_t>(1)), SerializationError);
}

// Found by tests/fuzz/record_fuzz (corpus: regression-bool-byte): a byte other than 0 or 1 was
// copied into a bool, which is undefined behaviour once the record's bool is read.
TEST(SerializerTest, ABoolByteOtherThanZeroOrOneThrows) {
  EXPECT_EQ(serialize(true), std::string(1, '\1'));
  EXPECT_EQ(serialize(false), std::string(1, '\0'));
  for (char byte : {'\x02', '\x20', '\xff'}) {
    try {
      deserialize<bool>(std::string(1, byte));
      FAIL() << "byte " << static_cast<int>(static_cast<uint8_t>(byte)) << " read as a bool";
    } catch (const SerializationError& e) {
      EXPECT_THAT(e.what(), HasSubstr("malformed bool"));
    }
  }
  EXPECT_THROW((deserialize<std::pair<int32_t, std::optional<bool>>>(serialize(int32_t{1}) +
                                                                     std::string("\1\x20"))),
               SerializationError);
}

}  // namespace
}  // namespace sluice
