// What C++ users (uWebSockets) do with the C API, in C++17:
//  - C++ objects placement-new'ed in loop and socket ext (alignas(16), a std::mutex, maps,
//    strings), alignment asserted, destroyed in on_close;
//  - Loop::defer: another std::thread queues work under the ext's mutex and calls
//    us_wakeup_loop; wakeup_cb runs it on the loop thread (it starts the client);
//  - a listen socket cast to us_socket_t * for us_socket_local_port;
//  - HttpParser's fence writes at data[len] and data[len + 1], the WebSocket parser's writes of
//    13 bytes before data and 4 after;
//  - an HTTP -> WebSocket upgrade: adoption inside on_data into a context with a bigger ext (so
//    the socket moves), returning the moved pointer, which the library then uses;
//  - pause / resume: a socket cast to us_poll_t * for us_poll_change(.., 0) /
//    LIBUS_SOCKET_READABLE and us_poll_events; nothing is delivered while paused;
//  - close with (length, char *) as code and reason, then write after close returns 0;
//  - exceptions thrown and caught inside a callback (none crosses the C boundary).
#include "test_common.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

struct alignas(16) LoopData {
    std::mutex deferMutex;
    std::vector<std::function<void()>> deferred;
    std::map<std::string, int> counters;
    long double precise = 1.0L;
};

struct alignas(16) HttpData {
    std::string buffered;
    std::uint64_t magic = 0x4854545044415441ull;
    alignas(16) long double when = 0;
};

struct alignas(16) WsData {
    std::string messages;
    std::uint64_t magic = 0x5753444154415753ull;
    int frames = 0;
    alignas(16) unsigned char big[200 * 1024]; // a big ext: adoption has to move the socket
};

us_loop_t *loop;
us_socket_context_t *http, *ws, *client;
us_listen_socket_t *listener;
int port;
us_socket_t *upgraded;          // the pointer adopt returned
bool paused;
long long resumed_at;
int client_stage;
std::atomic<bool> deferred_ran{false};
int http_closes, ws_closes, client_closes, client_ends;
const char BYE[] = "going away";

LoopData *loopData() { return static_cast<LoopData *>(us_loop_ext(loop)); }

template <typename T> T *ext_as(us_socket_t *s) {
    void *e = us_socket_ext(0, s);
    CHECK(reinterpret_cast<std::uintptr_t>(e) % alignof(T) == 0);
    return static_cast<T *>(e);
}

void wakeup(us_loop_t *l) {
    CHECK(l == loop);
    std::vector<std::function<void()>> run;
    {
        std::lock_guard<std::mutex> lock(loopData()->deferMutex);
        run.swap(loopData()->deferred);
    }
    for (auto &f : run) f();
}

void resume(us_timer_t *t) {
    auto *p = reinterpret_cast<us_poll_t *>(upgraded);
    CHECK(us_poll_events(p) == 0);
    us_poll_change(p, us_timer_loop(t), LIBUS_SOCKET_READABLE);
    CHECK((us_poll_events(p) & LIBUS_SOCKET_READABLE) == LIBUS_SOCKET_READABLE);
    paused = false;
    resumed_at = now_ms();
    us_timer_close(t);
}

us_socket_t *http_open(us_socket_t *s, int is_client, char *, int) noexcept {
    CHECK(is_client == 0);
    auto *d = new (ext_as<HttpData>(s)) HttpData();
    d->when = 2.5L;
    loopData()->counters["http_open"]++;
    return s;
}

us_socket_t *http_data(us_socket_t *s, char *data, int len) noexcept {
    auto *d = ext_as<HttpData>(s);
    CHECK(d->magic == 0x4854545044415441ull);
    // HttpParser: fence after the data.
    data[len] = '\r';
    data[len + 1] = '\n';
    d->buffered.append(data, static_cast<size_t>(len));
    if (d->buffered.find("\r\n\r\n") == std::string::npos) return s;
    CHECK(d->buffered.rfind("GET /chat", 0) == 0);

    // An exception inside a callback is fine as long as it is caught here.
    try {
        throw std::runtime_error("caught inside the callback");
    } catch (const std::exception &e) {
        loopData()->counters["caught"]++;
    }

    static const char response[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    CHECK(us_socket_write(0, s, response, sizeof(response) - 1, 0) == static_cast<int>(sizeof(response) - 1));

    // Upgrade: destroy the HTTP state, adopt into the WebSocket context with a bigger ext,
    // construct the WebSocket state in the new ext and return the new pointer.
    d->~HttpData();
    us_socket_t *ns = us_socket_context_adopt_socket(0, ws, s, sizeof(WsData));
    CHECK(ns != nullptr);
    CHECK(ns != s); // 200 KiB of ext cannot grow in place
    CHECK(us_socket_context(0, ns) == ws);
    auto *w = new (ext_as<WsData>(ns)) WsData();
    w->messages = "upgraded";
    upgraded = ns;
    return ns;
}

us_socket_t *http_close(us_socket_t *s, int, void *) noexcept {
    ext_as<HttpData>(s)->~HttpData();
    http_closes++;
    return s;
}

us_socket_t *ws_data(us_socket_t *s, char *data, int len) noexcept {
    CHECK(s == upgraded); // the library uses the pointer on_data returned
    CHECK(!paused);       // nothing arrives while paused
    auto *w = ext_as<WsData>(s);
    CHECK(w->magic == 0x5753444154415753ull);
    // The WebSocket parser: up to 13 bytes before the data, 4 after; unmasking in place.
    std::memset(data - 13, 0x5A, 13);
    std::memcpy(data + len, "\0\0\0\0", 4);
    for (int i = 0; i < len; i++) data[i] = static_cast<char>(data[i] ^ 0);
    w->messages.append(data, static_cast<size_t>(len));
    w->frames++;

    auto *p = reinterpret_cast<us_poll_t *>(s);
    if (w->messages == "upgradedframe1") {
        // Pause (uWS's WebSocket::pause / HttpResponse::pause), resume 150 ms later.
        CHECK(us_poll_events(p) & LIBUS_SOCKET_READABLE);
        us_poll_change(p, loop, 0);
        CHECK(us_poll_events(p) == 0);
        paused = true;
        us_timer_t *t = us_create_timer(loop, 0, 0);
        CHECK(t != nullptr);
        us_timer_set(t, resume, 150, 0);
        CHECK(us_socket_write(0, s, "ack1", 4, 0) == 4);
        return s;
    }
    if (w->messages == "upgradedframe1frame2") {
        CHECK(resumed_at > 0 && now_ms() >= resumed_at);
        // Close as uWS's WebSocket does: (length, char *).
        us_socket_t *r = us_socket_close(0, s, static_cast<int>(sizeof(BYE) - 1), const_cast<char *>(BYE));
        CHECK(r == s);
        CHECK(us_socket_is_closed(0, s) == 1);
        CHECK(us_socket_write(0, s, "late", 4, 0) == 0); // write after close
        CHECK(us_socket_write2(0, s, "a", 1, "b", 1) == 0);
        return s;
    }
    return s;
}

us_socket_t *ws_close(us_socket_t *s, int code, void *reason) noexcept {
    CHECK(s == upgraded);
    CHECK(code == static_cast<int>(sizeof(BYE) - 1));
    CHECK(std::string(static_cast<char *>(reason), static_cast<size_t>(code)) == "going away");
    auto *w = ext_as<WsData>(s);
    CHECK(w->frames >= 2);
    w->~WsData();
    ws_closes++;
    return s;
}

us_socket_t *ws_end(us_socket_t *s) noexcept { return us_socket_close(0, s, 0, nullptr); }

us_socket_t *client_open(us_socket_t *s, int is_client, char *, int) noexcept {
    CHECK(is_client == 1);
    static const char req[] = "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
    CHECK(us_socket_write(0, s, req, sizeof(req) - 1, 0) == static_cast<int>(sizeof(req) - 1));
    return s;
}

us_socket_t *client_data(us_socket_t *s, char *data, int len) noexcept {
    std::string got(data, static_cast<size_t>(len));
    if (client_stage == 0) {
        CHECK(got.rfind("HTTP/1.1 101", 0) == 0);
        client_stage = 1;
        CHECK(us_socket_write(0, s, "frame1", 6, 0) == 6);
    } else if (client_stage == 1) {
        CHECK(got == "ack1");
        client_stage = 2;
        CHECK(us_socket_write(0, s, "frame2", 6, 0) == 6); // arrives while the server is paused
    } else {
        CHECK(false);
    }
    return s;
}

us_socket_t *client_end(us_socket_t *s) noexcept {
    client_ends++;
    return us_socket_close(0, s, 0, nullptr);
}

us_socket_t *client_close(us_socket_t *s, int code, void *reason) noexcept {
    CHECK(code == 0 && reason == nullptr);
    client_closes++;
    us_listen_socket_close(0, listener);
    return s;
}

us_socket_t *client_error(us_socket_t *s, int code) noexcept {
    std::fprintf(stderr, "connect error %d\n", code);
    CHECK(false);
    return s;
}

} // namespace

int main() {
    test_watchdog(50);
    loop = us_create_loop(nullptr, wakeup, nullptr, nullptr, sizeof(LoopData));
    CHECK(loop != nullptr);
    void *le = us_loop_ext(loop);
    CHECK(reinterpret_cast<std::uintptr_t>(le) % alignof(LoopData) == 0);
    new (le) LoopData();

    us_socket_context_options_t options = {};
    http = us_create_socket_context(0, loop, 0, options);
    ws = us_create_child_socket_context(0, http, 0);
    client = us_create_socket_context(0, loop, 0, options);
    CHECK(http && ws && client);
    us_socket_context_on_open(0, http, http_open);
    us_socket_context_on_data(0, http, http_data);
    us_socket_context_on_close(0, http, http_close);
    us_socket_context_on_data(0, ws, ws_data);
    us_socket_context_on_close(0, ws, ws_close);
    us_socket_context_on_end(0, ws, ws_end);
    us_socket_context_on_open(0, client, client_open);
    us_socket_context_on_data(0, client, client_data);
    us_socket_context_on_end(0, client, client_end);
    us_socket_context_on_close(0, client, client_close);
    us_socket_context_on_connect_error(0, client, client_error);

    listener = us_socket_context_listen(0, http, nullptr, 0, LIBUS_LISTEN_DEFAULT, sizeof(HttpData));
    CHECK(listener != nullptr);
    port = us_socket_local_port(0, reinterpret_cast<us_socket_t *>(listener));
    CHECK(port > 0);

    // Loop::defer from another thread: the client is started on the loop thread.
    std::thread other([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        {
            std::lock_guard<std::mutex> lock(loopData()->deferMutex);
            loopData()->deferred.emplace_back([] {
                deferred_ran = true;
                CHECK(us_socket_context_connect(0, client, "127.0.0.1", port, nullptr, 0, 0) != nullptr);
            });
        }
        us_wakeup_loop(loop);
    });

    us_loop_run(loop);
    other.join();

    CHECK(deferred_ran);
    CHECK(client_stage == 2);
    CHECK(ws_closes == 1);
    CHECK(http_closes == 0);
    CHECK(client_ends == 1);
    CHECK(client_closes == 1);
    CHECK(loopData()->counters["http_open"] == 1);
    CHECK(loopData()->counters["caught"] == 1);

    loopData()->~LoopData();
    us_socket_context_free(0, ws);
    us_socket_context_free(0, http);
    us_socket_context_free(0, client);
    us_loop_free(loop);
    std::printf("test_cxx: ok\n");
    return 0;
}
