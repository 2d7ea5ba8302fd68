// Properties (Create*Handle, resolve_properties) and GetGlobalProperty: README "Properties" and
// "GetGlobalProperty" decisions.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using test::Props;

Result create(Role role, const Props& p) {
  std::unique_ptr<ProtocolHandle> h;
  return ProtocolHandle::create(role, p.data(), p.size(), &h);
}

// 8-byte aligned storage for ALLOCATED_BUFFER tests.
struct Aligned {
  explicit Aligned(std::size_t n) : words((n + 16) / 8 + 1) {}
  std::uint8_t* at(std::size_t offset = 0) { return reinterpret_cast<std::uint8_t*>(words.data()) + offset; }
  std::vector<std::uint64_t> words;
};

TEST(Properties, NoPropertiesGiveTheDefaults) {
  for (Role role : {Role::client, Role::server}) {
    std::unique_ptr<ProtocolHandle> h;
    ASSERT_EQ(ProtocolHandle::create(role, nullptr, 0, &h), Result::ok);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->state(), State::created);
    EXPECT_EQ(h->role(), role);
    EXPECT_EQ(h->options().receive_buffer_size, 4096u);
    EXPECT_EQ(h->options().send_buffer_size, role == Role::client ? 4096u : 16u);
    EXPECT_FALSE(h->options().disable_masking);
    EXPECT_FALSE(h->options().disable_utf8_verification);
    EXPECT_EQ(h->options().allocated_buffer, nullptr);
    EXPECT_EQ(h->failure_close_code(), 0);
  }
}

TEST(Properties, ResolvePropertiesDefaultsServerSendBufferIs16) {
  HandleOptions o;
  ASSERT_EQ(resolve_properties(Role::server, nullptr, 0, &o), Result::ok);
  EXPECT_EQ(o.send_buffer_size, kDefaultServerSendBufferSize);
  EXPECT_EQ(o.send_buffer_size, 16u);
  EXPECT_EQ(o.receive_buffer_size, 4096u);
  HandleOptions c;
  ASSERT_EQ(resolve_properties(Role::client, nullptr, 0, &c), Result::ok);
  EXPECT_EQ(c.send_buffer_size, 4096u);
}

TEST(Properties, ValuesAreApplied) {
  Props p;
  p.rbs(1024).sbs(512).disable_masking().disable_utf8();
  std::unique_ptr<ProtocolHandle> h;
  ASSERT_EQ(ProtocolHandle::create(Role::client, p.data(), p.size(), &h), Result::ok);
  EXPECT_EQ(h->options().receive_buffer_size, 1024u);
  EXPECT_EQ(h->options().send_buffer_size, 512u);
  EXPECT_TRUE(h->options().disable_masking);
  EXPECT_TRUE(h->options().disable_utf8_verification);
}

TEST(Properties, AnyNonZeroBoolIsTrue) {
  for (std::uint32_t v : {1u, 2u, 0x80000000u, 0xFFFFFFFFu}) {
    Props p;
    p.disable_masking(v).disable_utf8(v);
    HandleOptions o;
    ASSERT_EQ(resolve_properties(Role::client, p.data(), p.size(), &o), Result::ok) << v;
    EXPECT_TRUE(o.disable_masking) << v;
    EXPECT_TRUE(o.disable_utf8_verification) << v;
  }
  Props zero;
  zero.disable_masking(0).disable_utf8(0);
  HandleOptions o;
  ASSERT_EQ(resolve_properties(Role::client, zero.data(), zero.size(), &o), Result::ok);
  EXPECT_FALSE(o.disable_masking);
  EXPECT_FALSE(o.disable_utf8_verification);
}

TEST(Properties, GlobalOnlyAndUnknownTypesAreInvalid) {
  for (std::uint32_t type : {5u, 6u, 7u, 100u, 0x80000000u}) {
    for (Role role : {Role::client, Role::server}) {
      Props p;
      p.ulong_value(static_cast<PropertyType>(type), 30000);
      EXPECT_EQ(create(role, p), Result::invalid_arg) << type;
    }
  }
}

TEST(Properties, DuplicateTypeIsInvalid) {
  Props p;
  p.rbs(1024).rbs(1024);
  EXPECT_EQ(create(Role::client, p), Result::invalid_arg);
  Props q;
  q.disable_masking().sbs(64).disable_masking();
  EXPECT_EQ(create(Role::client, q), Result::invalid_arg);
}

TEST(Properties, NullValueIsInvalid) {
  for (std::uint32_t type : {0u, 1u, 2u, 3u, 4u}) {
    Props p;
    p.raw(Property{static_cast<PropertyType>(type), nullptr, type == 3 ? 8192u : 4u});
    EXPECT_EQ(create(Role::client, p), Result::invalid_arg) << type;
  }
}

TEST(Properties, WrongValueSizeIsInvalid) {
  for (std::uint32_t type : {0u, 1u, 2u, 4u}) {
    for (std::uint32_t size : {0u, 1u, 2u, 3u, 5u, 8u}) {
      Props p;
      p.ulong_value(static_cast<PropertyType>(type), type < 2 ? 1024 : 1, size);
      EXPECT_EQ(create(Role::client, p), Result::invalid_arg) << type << "/" << size;
    }
  }
}

TEST(Properties, ReceiveBufferSizeRange) {
  for (Role role : {Role::client, Role::server}) {
    EXPECT_EQ(create(role, Props().rbs(0)), Result::invalid_arg);
    EXPECT_EQ(create(role, Props().rbs(255)), Result::invalid_arg);
    EXPECT_EQ(create(role, Props().rbs(256)), Result::ok);
    EXPECT_EQ(create(role, Props().rbs(65536)), Result::ok);
    EXPECT_EQ(create(role, Props().rbs(65537)), Result::invalid_arg);
    EXPECT_EQ(create(role, Props().rbs(0xFFFFFFFFu)), Result::invalid_arg);
  }
}

TEST(Properties, SendBufferSizeRangeBothRoles) {
  for (Role role : {Role::client, Role::server}) {
    EXPECT_EQ(create(role, Props().sbs(0)), Result::invalid_arg);
    EXPECT_EQ(create(role, Props().sbs(15)), Result::invalid_arg);
    EXPECT_EQ(create(role, Props().sbs(16)), Result::ok);
    EXPECT_EQ(create(role, Props().sbs(255)), Result::ok);  // below the documented 256: accepted
    EXPECT_EQ(create(role, Props().sbs(65536)), Result::ok);
    EXPECT_EQ(create(role, Props().sbs(65537)), Result::invalid_arg);
  }
}

TEST(Properties, NullOutPointerAndNullArrayWithCount) {
  EXPECT_EQ(ProtocolHandle::create(Role::client, nullptr, 0, nullptr), Result::invalid_arg);
  EXPECT_EQ(ProtocolHandle::create(Role::server, nullptr, 0, nullptr), Result::invalid_arg);
  std::unique_ptr<ProtocolHandle> h;
  EXPECT_EQ(ProtocolHandle::create(Role::client, nullptr, 1, &h), Result::invalid_arg);
  EXPECT_EQ(h, nullptr);
  HandleOptions o;
  EXPECT_EQ(resolve_properties(Role::client, nullptr, 2, &o), Result::invalid_arg);
}

TEST(Properties, AllocatedBufferDotnetSizes) {
  // .NET: RBS + SBS + 144, pvValue -> PVOID holding the address.
  for (Role role : {Role::client, Role::server}) {
    const std::uint32_t rbs = 4096, sbs = role == Role::client ? 4096u : 16u;
    Aligned mem(rbs + sbs + 144);
    Props p;
    p.rbs(rbs).sbs(sbs).allocated(mem.at(), rbs + sbs + 144);
    std::unique_ptr<ProtocolHandle> h;
    ASSERT_EQ(ProtocolHandle::create(role, p.data(), p.size(), &h), Result::ok);
    EXPECT_EQ(h->options().allocated_buffer, mem.at());
    EXPECT_EQ(h->options().allocated_buffer_size, rbs + sbs + 144);
    Props small;
    small.rbs(rbs).sbs(sbs).allocated(mem.at(), rbs + sbs + 143);
    EXPECT_EQ(create(role, small), Result::invalid_arg);
  }
}

TEST(Properties, AllocatedBufferUsesDefaultSizesWhenNotGiven) {
  Aligned mem(4096 + 16 + 144);
  EXPECT_EQ(create(Role::server, Props().allocated(mem.at(), 4096 + 16 + 144)), Result::ok);
  EXPECT_EQ(create(Role::server, Props().allocated(mem.at(), 4096 + 16 + 143)), Result::invalid_arg);
  Aligned cmem(4096 + 4096 + 144);
  EXPECT_EQ(create(Role::client, Props().allocated(cmem.at(), 4096 + 4096 + 144)), Result::ok);
  EXPECT_EQ(create(Role::client, Props().allocated(cmem.at(), 4096 + 16 + 144)), Result::invalid_arg);
}

TEST(Properties, AllocatedBufferCheckIsOrderIndependent) {
  // The size rule uses the handle's RBS/SBS even when they come after the buffer.
  Aligned mem(256 + 16 + 144);
  Props p;
  p.allocated(mem.at(), 256 + 16 + 144).sbs(16).rbs(256);
  EXPECT_EQ(create(Role::client, p), Result::ok);
  Props q;
  q.allocated(mem.at(), 256 + 16 + 144).rbs(257);
  EXPECT_EQ(create(Role::server, q), Result::invalid_arg);
}

TEST(Properties, AllocatedBufferNullOrMisaligned) {
  Aligned mem(8192 + 144 + 64);
  EXPECT_EQ(create(Role::client, Props().allocated(nullptr, 8192 + 144)), Result::invalid_arg);
  for (std::size_t off : {1u, 2u, 4u, 7u}) {
    EXPECT_EQ(create(Role::client, Props().allocated(mem.at(off), 8192 + 144)), Result::invalid_arg) << off;
  }
  EXPECT_EQ(create(Role::client, Props().allocated(mem.at(8), 8192 + 144)), Result::ok);
}

// ---- GetGlobalProperty ------------------------------------------------------------------------

TEST(GlobalProperty, KeepaliveDefaultAndFloor) {
  set_keepalive_interval(kDefaultKeepaliveIntervalMs);
  std::uint32_t v = 0, size = 4;
  ASSERT_EQ(get_global_property(PropertyType::keepalive_interval, &v, &size), Result::ok);
  EXPECT_EQ(v, 30000u);
  EXPECT_EQ(size, 4u);

  set_keepalive_interval(1000);
  EXPECT_EQ(keepalive_interval(), 15000u);
  size = 4;
  ASSERT_EQ(get_global_property(PropertyType::keepalive_interval, &v, &size), Result::ok);
  EXPECT_EQ(v, 15000u);
  set_keepalive_interval(0);
  EXPECT_EQ(keepalive_interval(), 15000u);
  set_keepalive_interval(14999);
  EXPECT_EQ(keepalive_interval(), 15000u);
  set_keepalive_interval(15000);
  EXPECT_EQ(keepalive_interval(), 15000u);
  set_keepalive_interval(45000);
  EXPECT_EQ(keepalive_interval(), 45000u);
  size = 4;
  ASSERT_EQ(get_global_property(PropertyType::keepalive_interval, &v, &size), Result::ok);
  EXPECT_EQ(v, 45000u);
  set_keepalive_interval(kDefaultKeepaliveIntervalMs);
  EXPECT_EQ(keepalive_interval(), 30000u);
}

TEST(GlobalProperty, SupportedVersions) {
  std::uint32_t v[4] = {0, 0, 0, 0};
  std::uint32_t size = sizeof(v);
  ASSERT_EQ(get_global_property(PropertyType::supported_versions, v, &size), Result::ok);
  EXPECT_EQ(v[0], 13u);
  std::uint32_t one = 0;
  size = 4;
  ASSERT_EQ(get_global_property(PropertyType::supported_versions, &one, &size), Result::ok);
  EXPECT_EQ(one, 13u);
  EXPECT_EQ(size, 4u);
}

TEST(GlobalProperty, InsufficientBufferReportsTheNeededSize) {
  for (PropertyType t : {PropertyType::keepalive_interval, PropertyType::supported_versions}) {
    for (std::uint32_t given : {0u, 1u, 3u}) {
      std::uint32_t v = 0xABCDu, size = given;
      EXPECT_EQ(get_global_property(t, &v, &size), Result::insufficient_buffer) << given;
      EXPECT_EQ(size, 4u);
      EXPECT_EQ(v, 0xABCDu);  // nothing written
    }
    std::uint32_t size = 0;
    EXPECT_EQ(get_global_property(t, nullptr, &size), Result::insufficient_buffer);  // size query
    EXPECT_EQ(size, 4u);
  }
}

TEST(GlobalProperty, InvalidArguments) {
  std::uint32_t v = 0, size = 4;
  EXPECT_EQ(get_global_property(PropertyType::keepalive_interval, &v, nullptr), Result::invalid_arg);
  EXPECT_EQ(get_global_property(PropertyType::keepalive_interval, nullptr, &size), Result::invalid_arg);
  EXPECT_EQ(get_global_property(PropertyType::supported_versions, nullptr, &size), Result::invalid_arg);
  for (std::uint32_t type : {0u, 1u, 2u, 3u, 4u, 7u, 1000u}) {
    size = 4;
    EXPECT_EQ(get_global_property(static_cast<PropertyType>(type), &v, &size), Result::invalid_arg) << type;
  }
}

}  // namespace
}  // namespace wsgate::ws

#if defined(__unix__) || defined(__APPLE__)
namespace wsgate::ws {
namespace {

using namespace test;

// Areas of 64 KiB and more (the gateway's 2 x 64 KiB) are an anonymous mapping of their own, so
// the pages an idle connection does not touch cost no memory: the receive area starts on a page
// boundary (a heap block of this size never does, it follows malloc's chunk header), and bytes
// read into it come out as a message like anywhere else.
TEST(Properties, LargeAreasAreTheirOwnMappingAndWork) {
  auto h = open_handle(Role::client, Props().rbs(kMaxBufferSize).sbs(kMaxBufferSize));
  ASSERT_TRUE(h);
  ASSERT_EQ(h->receive(nullptr, nullptr), Result::ok);
  Buffer buffers[2]{};
  std::uint32_t count = 2;
  Action action = Action::no_action;
  BufferType type = BufferType::binary_message;
  void* app = nullptr;
  void* context = nullptr;
  ASSERT_EQ(h->get_action(ActionQueue::receive, buffers, &count, &action, &type, &app, &context),
            Result::ok);
  ASSERT_EQ(action, Action::receive_from_network);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffers[0].data.buffer) % 4096, 0u);
  ASSERT_EQ(buffers[0].data.length, kMaxBufferSize);
  const Bytes wire = frame(true, 0x2, bytes_of("mapped"));
  std::memcpy(buffers[0].data.buffer, wire.data(), wire.size());
  h->complete_action(context, static_cast<std::uint32_t>(wire.size()));
  count = 2;
  ASSERT_EQ(h->get_action(ActionQueue::receive, buffers, &count, &action, &type, &app, &context),
            Result::ok);
  ASSERT_EQ(action, Action::indicate_receive_complete);
  EXPECT_EQ(type, BufferType::binary_message);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffers[0].data.buffer),
                        buffers[0].data.length),
            "mapped");
  h->complete_action(context, 0);
}

}  // namespace
}  // namespace wsgate::ws
#endif
