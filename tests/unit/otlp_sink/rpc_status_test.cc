// google.rpc.Status bytes, decoded with protobuf's generic tools rather than the encoder.
#include "rpc_status.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>

namespace zerotrace::otlp_sink {
namespace {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

TEST(RpcStatusTest, CarriesCodeMessageAndRetryInfoDelay) {
  const std::string bytes = EncodeRpcStatus(14, "try later", std::chrono::milliseconds(1500));
  UnknownFieldSet status;
  ASSERT_TRUE(status.ParseFromString(bytes));
  ASSERT_EQ(status.field_count(), 3);
  EXPECT_EQ(status.field(0).number(), 1);
  EXPECT_EQ(status.field(0).varint(), 14u);
  EXPECT_EQ(status.field(1).number(), 2);
  EXPECT_EQ(status.field(1).length_delimited(), "try later");
  ASSERT_EQ(status.field(2).number(), 3);
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(status.field(2).length_delimited()));
  EXPECT_EQ(any.type_url(), "type.googleapis.com/google.rpc.RetryInfo");
  UnknownFieldSet retry_info;
  ASSERT_TRUE(retry_info.ParseFromString(any.value()));
  ASSERT_EQ(retry_info.field_count(), 1);
  ASSERT_EQ(retry_info.field(0).type(), UnknownField::TYPE_LENGTH_DELIMITED);
  google::protobuf::Duration delay;
  ASSERT_TRUE(delay.ParseFromString(retry_info.field(0).length_delimited()));
  EXPECT_EQ(delay.seconds(), 1);
  EXPECT_EQ(delay.nanos(), 500000000);
}

TEST(RpcStatusTest, WithoutAHintHasNoDetails) {
  UnknownFieldSet status;
  ASSERT_TRUE(status.ParseFromString(EncodeRpcStatus(3, "bad", std::nullopt)));
  ASSERT_EQ(status.field_count(), 2);
  EXPECT_EQ(status.field(0).varint(), 3u);
  EXPECT_EQ(status.field(1).length_delimited(), "bad");
}

TEST(RpcStatusTest, SubSecondAndZeroDelays) {
  for (const int ms : {0, 250, 60000}) {
    UnknownFieldSet status, retry_info;
    ASSERT_TRUE(status.ParseFromString(EncodeRpcStatus(14, "", std::chrono::milliseconds(ms))));
    ASSERT_EQ(status.field_count(), 2) << ms;  // code, details (an empty message is omitted)
    google::protobuf::Any any;
    ASSERT_TRUE(any.ParseFromString(status.field(1).length_delimited()));
    ASSERT_TRUE(retry_info.ParseFromString(any.value()));
    google::protobuf::Duration delay;
    ASSERT_TRUE(delay.ParseFromString(retry_info.field(0).length_delimited()));
    EXPECT_EQ(delay.seconds() * 1000 + delay.nanos() / 1000000, ms);
  }
}

}  // namespace
}  // namespace zerotrace::otlp_sink
