// echo: sends a few messages through wsgated to a WebSocket server and prints the replies.
//
//   echo URL [MESSAGE...]      (daemon address: $WSGATE_ADDRESS or the default socket)
//
// Built against the installed SDK: find_package(wsgate) -> wsgate::client.
#include <wsgate/client.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s URL [MESSAGE...]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> messages(argv + 2, argv + argc);
  if (messages.empty()) messages = {"hello", "world"};
  try {
    wsgate::Client client;
    if (!client.wait_ready(wsgate::deadline_after(10s))) {
      std::fprintf(stderr, "wsgated at %s is not ready\n", client.address().c_str());
      return 1;
    }
    wsgate::Session session = wsgate::Session::open(client, argv[1]);
    std::printf("opened %s (session %s)\n", argv[1], session.id().c_str());
    for (const std::string& text : messages) {
      session.send_text(text);
      std::optional<wsgate::Message> reply = session.receive(wsgate::deadline_after(10s));
      if (!reply) {
        std::fprintf(stderr, "no reply within 10 s\n");
        return 1;
      }
      std::printf("echo: %s\n", reply->data.c_str());
      if (reply->data != text) return 1;
    }
    wsgate::CloseInfo closed = session.close(1000, "done");
    std::printf("closed %u %s\n", closed.code, closed.reason.c_str());
    return 0;
  } catch (const wsgate::Error& e) {
    std::fprintf(stderr, "error: %s (cause %s)\n", e.what(), e.cause().c_str());
    return 1;
  }
}
