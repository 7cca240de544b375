// AttributeWriter: a span's attributes written over fresh or recycled storage come out the same.
#include "trace/attribute_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zerotrace::trace {
namespace {

// One span's attributes, of every kind a writer makes.
void WriteTypical(std::vector<Attribute>* v, std::string_view path, int64_t status) {
  AttributeWriter w(v);
  w.Add("http.request.method", "GET");
  w.Add("url.path", path);
  w.AddString("url.full").append("http://127.0.0.1:8089").append(path);
  w.Add("server.port", int64_t{8089});
  w.Add("http.response.status_code", status);
  w.Add("flag", true);
  w.Add("ratio", 0.5);
  w.Done();
}

std::vector<Attribute> Expected(std::string_view path, int64_t status) {
  return {{"http.request.method", std::string("GET")},
          {"url.path", std::string(path)},
          {"url.full", "http://127.0.0.1:8089" + std::string(path)},
          {"server.port", int64_t{8089}},
          {"http.response.status_code", status},
          {"flag", true},
          {"ratio", 0.5}};
}

void ExpectEqual(const std::vector<Attribute>& got, const std::vector<Attribute>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(got[i].key, want[i].key) << i;
    EXPECT_EQ(got[i].value, want[i].value) << got[i].key;
  }
}

TEST(AttributeWriter, FreshStorageGetsEveryAttributeInOrder) {
  std::vector<Attribute> v;
  WriteTypical(&v, "/f/7.txt", 200);
  ExpectEqual(v, Expected("/f/7.txt", 200));
}

TEST(AttributeWriter, RecycledStorageIsOverwrittenWhateverItHeld) {
  // A longer span of other kinds first: every slot changes kind, and the extra ones go.
  std::vector<Attribute> v;
  {
    AttributeWriter w(&v);
    for (int i = 0; i < 5; i++) w.Add("n", int64_t{i});
    for (int i = 0; i < 5; i++) w.Add("s", std::string(40, 'x'));
    w.Done();
  }
  WriteTypical(&v, "/a/much/longer/path/than/the/inline/buffer/holds", 503);
  ExpectEqual(v, Expected("/a/much/longer/path/than/the/inline/buffer/holds", 503));
  WriteTypical(&v, "/", 200);
  ExpectEqual(v, Expected("/", 200));
}

TEST(AttributeWriter, RecycledValueChangedInOneByteAnywhereIsRewritten) {
  // The writer compares a recycled value with the new one before copying: a value of the same
  // length that differs in any one byte (inside a word, in the overlapping last word, or in a
  // short value) must still be written.
  for (size_t n = 1; n <= 40; n++) {
    const std::string base(n, 'a');
    for (size_t at = 0; at < n; at++) {
      std::vector<Attribute> v;
      {
        AttributeWriter w(&v);
        w.Add("k", base);
        w.Done();
      }
      std::string changed = base;
      changed[at] = 'b';
      AttributeWriter w(&v);
      w.Add("k", changed);
      w.Done();
      ASSERT_EQ(v.size(), 1u);
      EXPECT_EQ(v[0].value, AttributeValue(changed)) << "length " << n << ", byte " << at;
    }
  }
}

TEST(AttributeWriter, KeptAttributesStayAndHasSeesThem) {
  std::vector<Attribute> v;
  WriteTypical(&v, "/x", 200);
  AttributeWriter w(&v, 2);
  EXPECT_TRUE(w.Has("url.path"));
  EXPECT_FALSE(w.Has("url.full"));
  w.Add("server.address", "127.0.0.1");
  w.Done();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1].value, AttributeValue(std::string("/x")));
  EXPECT_EQ(v[2].key, "server.address");
  EXPECT_EQ(v[2].value, AttributeValue(std::string("127.0.0.1")));
}

}  // namespace
}  // namespace zerotrace::trace
