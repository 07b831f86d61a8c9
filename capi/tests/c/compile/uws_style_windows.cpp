// The header as uWebSockets uses it, built with mingw's default g++ on Windows (its win32
// thread model has no std::thread or std::mutex; test_cxx.cpp, which needs them, is built with
// the -posix g++ by capi/tests/run-windows.sh). Compiled with -std=c++17 -Wall -Wextra -Werror
// -pedantic, linked against libusockets.a and run under Wine; it also builds on POSIX.
//
//  - libusockets.h included from C++ (it opens extern "C" itself) next to <algorithm>:
//    std::min / std::max must still work after <winsock2.h> (the header defines NOMINMAX);
//  - no backend macro on Windows (uWS would compile its libuv code under LIBUS_USE_LIBUV);
//  - everything templated over `bool SSL` and passing `int ssl = SSL`, as uWS's
//    TemplatedApp / HttpContext<SSL> / AsyncSocket<SSL> do;
//  - us_socket_context_options_t built field by field and passed by value;
//  - C++ objects placement-new'ed in loop, context and socket ext, destroyed in on_close;
//  - LIBUS_SOCKET_DESCRIPTOR from us_poll_fd and us_socket_get_native_handle (uWS's
//    getNativeHandle), on_pre_open returning the descriptor, LIBUS_SOCKET_ERROR compared;
//  - a round trip through a listener and a client, closed with a code and a reason.
// With $USOCKETS_TLS_DIR (run-windows.sh's test certificates) the SSL = true instantiation runs
// too, over TLS; without it (or in a LIBUS_NO_SSL build) it is compiled only.
#include "libusockets.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>

#if defined(LIBUS_USE_LIBUV) || defined(LIBUS_USE_IO_URING)
#error "uWebSockets would take its libuv / io_uring paths"
#endif
#if defined(_WIN32) && (defined(LIBUS_USE_EPOLL) || defined(LIBUS_USE_KQUEUE))
#error "no backend macro on Windows"
#endif

#define EXPECT(cond)                                                                        \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            std::fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #cond); \
            std::exit(1);                                                                   \
        }                                                                                   \
    } while (0)

namespace {

static_assert(std::is_same<decltype(us_poll_fd(nullptr)), LIBUS_SOCKET_DESCRIPTOR>::value, "us_poll_fd");
// NOMINMAX: these would not compile if <windows.h> had defined min and max as macros.
static_assert(std::min(LIBUS_EXT_ALIGNMENT, 64) == 16 && std::max(LIBUS_SOCKET_READABLE, 0) == 1, "min/max");

struct alignas(LIBUS_EXT_ALIGNMENT) LoopData {
    std::string log;
    int pre = 0, post = 0;
};

struct ContextData {
    std::string name;
    int opens = 0, closes = 0;
};

struct alignas(LIBUS_EXT_ALIGNMENT) SocketData {
    std::string received;
    bool client = false;
};

const char HELLO[] = "hello from a uWS-style program";
const char REASON[] = "bye";

us_loop_t *loop;

LoopData *loopData() { return static_cast<LoopData *>(us_loop_ext(loop)); }

template <bool SSL> struct App {
    static constexpr int ssl = SSL; // uWS: `static const int SSL = ...` passed as `int ssl`

    us_socket_context_t *server = nullptr, *client = nullptr;
    us_listen_socket_t *listener = nullptr;
    int preOpens = 0, handleChecks = 0;

    static App *self;

    static ContextData *ctxData(us_socket_context_t *c) {
        return static_cast<ContextData *>(us_socket_context_ext(ssl, c));
    }
    static SocketData *data(us_socket_t *s) { return static_cast<SocketData *>(us_socket_ext(ssl, s)); }

    static LIBUS_SOCKET_DESCRIPTOR onPreOpen(us_socket_context_t *, LIBUS_SOCKET_DESCRIPTOR fd, char *, int) {
        EXPECT(fd != LIBUS_SOCKET_ERROR);
        self->preOpens++;
        return fd; // let the library adopt it
    }

    static us_socket_t *onOpen(us_socket_t *s, int isClient, char *, int) {
        auto *d = new (data(s)) SocketData();
        d->client = isClient != 0;
        ctxData(us_socket_context(ssl, s))->opens++;
        // uWS's AsyncSocket::getNativeHandle: the descriptor (ssl = 0) cast to a pointer.
        LIBUS_SOCKET_DESCRIPTOR fd = us_poll_fd(reinterpret_cast<us_poll_t *>(s));
        EXPECT(fd != LIBUS_SOCKET_ERROR);
        void *handle = us_socket_get_native_handle(ssl, s);
        if (!SSL) {
            EXPECT(static_cast<LIBUS_SOCKET_DESCRIPTOR>(reinterpret_cast<std::uintptr_t>(handle)) == fd);
            self->handleChecks++;
        }
        if (isClient) {
            int n = static_cast<int>(sizeof(HELLO) - 1);
            EXPECT(us_socket_write(ssl, s, HELLO, n, 0) == n);
        }
        return s;
    }

    static us_socket_t *onData(us_socket_t *s, char *chunk, int length) {
        SocketData *d = data(s);
        d->received.append(chunk, static_cast<std::size_t>(std::max(length, 0)));
        if (!d->client) {
            EXPECT(us_socket_write(ssl, s, chunk, length, 0) == length); // echo
        } else if (d->received.size() == sizeof(HELLO) - 1) {
            EXPECT(d->received == HELLO);
            return us_socket_close(ssl, s, static_cast<int>(sizeof(REASON) - 1), const_cast<char *>(REASON));
        }
        return s;
    }

    static us_socket_t *onEnd(us_socket_t *s) { return us_socket_close(ssl, s, 0, nullptr); }

    static us_socket_t *onClose(us_socket_t *s, int code, void *reason) {
        SocketData *d = data(s);
        if (d->client) {
            EXPECT(code == static_cast<int>(sizeof(REASON) - 1));
            EXPECT(std::memcmp(reason, REASON, sizeof(REASON) - 1) == 0);
            us_listen_socket_close(ssl, self->listener);
            self->listener = nullptr;
        }
        ctxData(us_socket_context(ssl, s))->closes++;
        d->~SocketData();
        return s;
    }

    static us_socket_t *onConnectError(us_socket_t *s, int code) {
        std::fprintf(stderr, "connect error %d\n", code);
        EXPECT(false);
        return s;
    }

    us_socket_context_t *makeContext(const char *name, us_socket_context_options_t options) {
        us_socket_context_t *c = us_create_socket_context(ssl, loop, sizeof(ContextData), options);
        EXPECT(c != nullptr);
        new (ctxData(c)) ContextData{name, 0, 0};
        us_socket_context_on_open(ssl, c, onOpen);
        us_socket_context_on_data(ssl, c, onData);
        us_socket_context_on_end(ssl, c, onEnd);
        us_socket_context_on_close(ssl, c, onClose);
        us_socket_context_on_connect_error(ssl, c, onConnectError);
        return c;
    }

    void run(us_socket_context_options_t serverOptions, us_socket_context_options_t clientOptions) {
        self = this;
        server = makeContext("server", serverOptions);
        client = makeContext("client", clientOptions);
        us_socket_context_on_pre_open(ssl, server, onPreOpen);
        listener = us_socket_context_listen(ssl, server, "127.0.0.1", 0, LIBUS_LISTEN_EXCLUSIVE_PORT,
                                            sizeof(SocketData));
        EXPECT(listener != nullptr);
        int port = us_socket_local_port(ssl, reinterpret_cast<us_socket_t *>(listener));
        EXPECT(port > 0);
        us_socket_t *c = us_socket_context_connect(ssl, client, "localhost", port, nullptr, 0, sizeof(SocketData));
        EXPECT(c != nullptr);
        us_loop_run(loop);
        EXPECT(preOpens == 1);
        EXPECT(handleChecks == (SSL ? 0 : 2));
        for (us_socket_context_t *ctx : {server, client}) {
            ContextData *cd = ctxData(ctx);
            EXPECT(cd->opens == 1 && cd->closes == 1);
            loopData()->log += cd->name + (SSL ? " tls ok; " : " ok; ");
            cd->~ContextData();
            us_socket_context_free(ssl, ctx);
        }
    }
};

template <bool SSL> App<SSL> *App<SSL>::self;

void pre(us_loop_t *) { loopData()->pre++; }
void post(us_loop_t *) { loopData()->post++; }
void wakeup(us_loop_t *) {}

us_socket_context_options_t noOptions() {
    us_socket_context_options_t o{};
    o.ssl_prefer_low_memory_usage = 0;
    return o;
}

} // namespace

int main() {
    loop = us_create_loop(nullptr, wakeup, pre, post, sizeof(LoopData));
    EXPECT(loop != nullptr);
    new (loopData()) LoopData();

    App<false>().run(noOptions(), noOptions());

#ifndef LIBUS_NO_SSL
    if (const char *dir = std::getenv("USOCKETS_TLS_DIR")) {
        std::string cert = std::string(dir) + "/server.pem", key = std::string(dir) + "/server.key",
                    ca = std::string(dir) + "/ca.pem";
        us_socket_context_options_t so = noOptions(), co = noOptions();
        so.cert_file_name = cert.c_str();
        so.key_file_name = key.c_str();
        co.ca_file_name = ca.c_str(); // the client verifies the server (chain and "localhost")
        App<true>().run(so, co);
    }
#endif

    EXPECT(loopData()->pre >= 2 && loopData()->pre == loopData()->post);
    std::printf("uws_style_windows: %s\n", loopData()->log.c_str());
    loopData()->~LoopData();
    us_loop_free(loop);
    return 0;
}
