#include "ipc/fuzz/decode_walk.h"

#include <capnp/dynamic.h>
#include <kj/exception.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "ipc/message.h"
#include "schemas/common.capnp.h"
#include "schemas/control.capnp.h"
#include "schemas/gofer.capnp.h"
#include "schemas/mem.capnp.h"
#include "schemas/net.capnp.h"

namespace bulkhead::ipc::fuzz {
namespace {

namespace common = schema;
namespace ctl = schema::control;

// Keeps values alive without the optimiser dropping the reads.
volatile uint64_t g_sink;
void Sink(uint64_t v) { g_sink = g_sink + v; }

void Touch(capnp::Data::Reader d) { TouchBytes(d.begin(), d.size()); }
void Touch(capnp::Text::Reader t) {
  // Cap'n Proto promises a NUL right after the text.
  TouchBytes(reinterpret_cast<const uint8_t*>(t.begin()), t.size() + 1);
  if (t.cStr()[t.size()] != '\0') {
    std::fprintf(stderr, "FUZZ: Text::Reader without its NUL terminator\n");
    std::abort();
  }
}

// ------------------------------------------------ typed walks, handler-style

void Walk(common::Hello::Reader h) {
  Sink(h.getVersion());
  Sink(static_cast<uint64_t>(h.getService()));
  Sink(static_cast<uint64_t>(h.getPid()));
  Touch(h.getSandboxId());
}
void Walk(common::HelloReply::Reader h) {
  Sink(h.getAccepted());
  Sink(h.getVersion());
  Sink(static_cast<uint64_t>(h.getService()));
  Touch(h.getReason());
}
void Walk(common::Ping::Reader p) {
  Sink(p.getSeq());
  Sink(p.getSentNs());
  auto payload = p.getPayload();  // what every server echoes back
  Sink(payload.size());
  Touch(payload);
}
void Walk(common::Pong::Reader p) {
  Sink(p.getSeq());
  Sink(p.getSentNs());
  Touch(p.getPayload());
}
void Walk(common::Error::Reader e) {
  Sink(static_cast<uint64_t>(e.getErrno()));
  Touch(e.getMessage());
}
void Walk(common::ServiceStats::Reader s) {
  Sink(static_cast<uint64_t>(s.getService()));
  Sink(static_cast<uint64_t>(s.getPid()));
  Sink(s.getRestarts() + s.getUptimeNs() + s.getMessagesIn() + s.getMessagesOut() + s.getErrors());
  Sink(static_cast<uint64_t>(s.getLastFatalSyscall()));
  for (uint64_t c : s.getLatency().getCounts()) Sink(c);
  for (auto c : s.getChannels()) {
    Touch(c.getName());
    Sink(c.getMessagesIn() + c.getMessagesOut() + c.getErrors() + c.getRingDepth() +
         c.getBulkBytesIn() + c.getBulkBytesOut());
  }
}
void Walk(ctl::ChannelGrant::Reader g) {
  Touch(g.getName());
  Sink(static_cast<uint64_t>(g.getPeer()));
  Sink(static_cast<uint64_t>(g.getRole()));
  Sink(g.getHasPeerPidfd());
  Sink(g.getGeneration());
}
void Walk(ctl::ServicePing::Reader p) {
  Sink(static_cast<uint64_t>(p.getService()));
  Sink(p.getOk());
  Sink(p.getRoundTripNs());
  Touch(p.getError());
}

void Walk(ctl::Request::Reader r) {
  switch (r.which()) {
    case ctl::Request::HELLO: Walk(r.getHello()); break;
    case ctl::Request::PING: Walk(r.getPing()); break;
    case ctl::Request::STATS: (void)r.getStats(); break;
    case ctl::Request::SHUTDOWN: break;
    case ctl::Request::FORBIDDEN_SYSCALL: Sink(r.getForbiddenSyscall()); break;
    default: Sink(static_cast<uint64_t>(r.which())); break;  // a newer member
  }
}
void Walk(ctl::Response::Reader r) {
  switch (r.which()) {
    case ctl::Response::ERROR: Walk(r.getError()); break;
    case ctl::Response::HELLO: Walk(r.getHello()); break;
    case ctl::Response::PONG: Walk(r.getPong()); break;
    case ctl::Response::STATS: Walk(r.getStats()); break;
    case ctl::Response::OK: break;
    default: Sink(static_cast<uint64_t>(r.which())); break;
  }
}
void Walk(ctl::Bootstrap::Reader b) {
  Sink(static_cast<uint64_t>(b.getService()));
  Touch(b.getSandboxId());
  for (auto g : b.getChannels()) Walk(g);
  Sink(b.getAllowTestHooks());
}
void Walk(ctl::ChannelUpdate::Reader u) {
  for (auto g : u.getChannels()) Walk(g);
}
void Walk(ctl::CliRequest::Reader r) {
  switch (r.which()) {
    case ctl::CliRequest::STATS:
    case ctl::CliRequest::PING:
    case ctl::CliRequest::STOP: break;
    case ctl::CliRequest::KILL_SERVICE: Sink(static_cast<uint64_t>(r.getKillService())); break;
    default: Sink(static_cast<uint64_t>(r.which())); break;
  }
}
void Walk(ctl::CliResponse::Reader r) {
  switch (r.which()) {
    case ctl::CliResponse::ERROR: Walk(r.getError()); break;
    case ctl::CliResponse::STATS:
      for (auto s : r.getStats()) Walk(s);
      break;
    case ctl::CliResponse::PINGS:
      for (auto p : r.getPings()) Walk(p);
      break;
    case ctl::CliResponse::OK: break;
    default: Sink(static_cast<uint64_t>(r.which())); break;
  }
}

// The data protocols share their first members.
template <typename Req>
void WalkDataRequest(typename Req::Reader r) {
  switch (r.which()) {
    case Req::HELLO: Walk(r.getHello()); break;
    case Req::PING: Walk(r.getPing()); break;
    case Req::STATS: (void)r.getStats(); break;
    default: Sink(static_cast<uint64_t>(r.which())); break;
  }
}
template <typename Resp>
void WalkDataResponse(typename Resp::Reader r) {
  switch (r.which()) {
    case Resp::ERROR: Walk(r.getError()); break;
    case Resp::HELLO: Walk(r.getHello()); break;
    case Resp::PONG: Walk(r.getPong()); break;
    case Resp::STATS: Walk(r.getStats()); break;
    default: Sink(static_cast<uint64_t>(r.which())); break;
  }
}
void Walk(schema::gofer::Request::Reader r) { WalkDataRequest<schema::gofer::Request>(r); }
void Walk(schema::gofer::Response::Reader r) { WalkDataResponse<schema::gofer::Response>(r); }
void Walk(schema::net::Request::Reader r) { WalkDataRequest<schema::net::Request>(r); }
void Walk(schema::net::Response::Reader r) { WalkDataResponse<schema::net::Response>(r); }
void Walk(schema::mem::Request::Reader r) { WalkDataRequest<schema::mem::Request>(r); }
void Walk(schema::mem::Response::Reader r) { WalkDataResponse<schema::mem::Response>(r); }

// --------------------------- reflective walk: every field the schema knows
// (members added to a schema later are covered without touching this file).

void WalkDynamic(capnp::DynamicValue::Reader v);

void WalkDynamicStruct(capnp::DynamicStruct::Reader s) {
  for (auto f : s.getSchema().getNonUnionFields()) WalkDynamic(s.get(f));
  KJ_IF_MAYBE(f, s.which()) { WalkDynamic(s.get(*f)); }
}

void WalkDynamic(capnp::DynamicValue::Reader v) {
  switch (v.getType()) {
    case capnp::DynamicValue::TEXT: Touch(v.as<capnp::Text>()); break;
    case capnp::DynamicValue::DATA: Touch(v.as<capnp::Data>()); break;
    case capnp::DynamicValue::LIST:
      for (auto e : v.as<capnp::DynamicList>()) WalkDynamic(e);
      break;
    case capnp::DynamicValue::STRUCT: WalkDynamicStruct(v.as<capnp::DynamicStruct>()); break;
    case capnp::DynamicValue::ENUM: Sink(v.as<capnp::DynamicEnum>().getRaw()); break;
    case capnp::DynamicValue::BOOL: Sink(v.as<bool>()); break;
    case capnp::DynamicValue::INT: Sink(static_cast<uint64_t>(v.as<int64_t>())); break;
    case capnp::DynamicValue::UINT: Sink(v.as<uint64_t>()); break;
    default: break;  // VOID, FLOAT, ANY_POINTER, CAPABILITY: nothing to follow
  }
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "FUZZ: %s\n", what);
  std::abort();
}

bool AllowReadErrors() {
  static const bool allow = [] {
    const char* v = std::getenv("BULKHEAD_FUZZ_ALLOW_READ_ERRORS");
    return v != nullptr && v[0] == '1';
  }();
  return allow;
}

template <typename T>
void CheckAndWalk(const char* type_name, Decoded<T>& d) {
  try {
    Walk(d.root());
    WalkDynamicStruct(capnp::toDynamic(d.root()));
  } catch (const kj::Exception& e) {
    ++Stats().read_errors;
    if (AllowReadErrors()) {
      // Print each kind once, to see what else is behind the known bug.
      static std::set<std::string> seen;
      std::string what = e.getDescription().cStr();
      // The human part of the message, without the values.
      std::string kind = what.find("; ") != std::string::npos ? what.substr(what.rfind("; ") + 2)
                                                               : what.substr(0, what.find(" ["));
      if (seen.size() < 64 && seen.insert(std::string(type_name) + ": " + kind).second) {
        std::fprintf(stderr, "FUZZ: read error after Decode (allowed): %s: %s\n", type_name, what.c_str());
      }
      return;
    }
    std::fprintf(stderr,
                 "FUZZ: Decoded<%s> accepted a message (kOk) but reading it threw:\n  %s\n"
                 "(message.h promises later accesses cannot fail; set "
                 "BULKHEAD_FUZZ_ALLOW_READ_ERRORS=1 to only count these)\n",
                 type_name, e.getDescription().cStr());
    std::abort();
  }
}

template <typename T>
int DecodeOne(const char* type_name, const ReceivedMessage* m, const uint64_t* words,
              size_t count) {
  Decoded<T> d;
  ++Stats().decode_attempts;
  Status st = m ? d.Decode(*m) : d.DecodeWords(words, count);
  if (st == Status::kBadMessage) return 0;
  if (st != Status::kOk) Die("Decode returned a status other than kOk / kBadMessage");
  ++Stats().decoded_ok;
  CheckAndWalk(type_name, d);
  // A second decode of the same bytes must agree (no state leaks between decodes).
  Decoded<T> again;
  if ((m ? again.Decode(*m) : again.DecodeWords(words, count)) != Status::kOk) {
    Die("a message decoded once and not the second time");
  }
  return 1;
}

int DecodeEverything(const ReceivedMessage* m, const uint64_t* w, size_t n) {
  int ok = 0;
  ok += DecodeOne<ctl::Request>("control::Request", m, w, n);
  ok += DecodeOne<ctl::Response>("control::Response", m, w, n);
  ok += DecodeOne<ctl::Bootstrap>("control::Bootstrap", m, w, n);
  ok += DecodeOne<ctl::ChannelUpdate>("control::ChannelUpdate", m, w, n);
  ok += DecodeOne<ctl::CliRequest>("control::CliRequest", m, w, n);
  ok += DecodeOne<ctl::CliResponse>("control::CliResponse", m, w, n);
  ok += DecodeOne<schema::gofer::Request>("gofer::Request", m, w, n);
  ok += DecodeOne<schema::gofer::Response>("gofer::Response", m, w, n);
  ok += DecodeOne<schema::net::Request>("net::Request", m, w, n);
  ok += DecodeOne<schema::net::Response>("net::Response", m, w, n);
  ok += DecodeOne<schema::mem::Request>("mem::Request", m, w, n);
  ok += DecodeOne<schema::mem::Response>("mem::Response", m, w, n);
  return ok;
}

}  // namespace

FuzzStats& Stats() {
  static FuzzStats s;
  return s;
}

void TouchBytes(const uint8_t* data, size_t size) {
  uint8_t x = 0;
  for (size_t i = 0; i < size; ++i) x ^= data[i];
  g_sink = g_sink + x;
}

int DecodeAll(const ReceivedMessage& m) { return DecodeEverything(&m, nullptr, 0); }

int DecodeAllWords(const uint64_t* words, size_t count) {
  return DecodeEverything(nullptr, words, count);
}

}  // namespace bulkhead::ipc::fuzz
