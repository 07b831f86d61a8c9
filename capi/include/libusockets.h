/*
 * libusockets.h - the C interface of usockets-rs, a Rust re-implementation of uSockets.
 *
 * This is the only header a C or C++ program includes. It declares the same functions, with the
 * same names, argument order and types, as the current upstream libusockets.h, so a program
 * written against upstream builds unchanged and only its link line changes:
 *
 *     cc app.c -I<prefix>/include -L<prefix>/lib -lusockets -lpthread -ldl -lm
 *
 * (or `pkg-config --cflags --libs libusockets`, `--static` for the static library).
 *
 * General rules (they hold for every function below):
 *
 *  - Threads: us_wakeup_loop is the only thread-safe function. Every other function must be
 *    called on the thread that runs the loop the object belongs to.
 *  - Callbacks may call any us_* function re-entrantly (write, close, adopt, connect, set
 *    timers ...). They must not throw C++ exceptions or longjmp out: nothing may unwind through
 *    the library.
 *  - Every socket callback returns a socket pointer; the library keeps using the returned
 *    pointer (return the pointer us_socket_context_adopt_socket gave you if you adopted).
 *  - Ext memory (the *_ext functions) is aligned to LIBUS_EXT_ALIGNMENT (16) bytes, so C++
 *    objects may be placement-new'ed there.
 *  - A closed socket's memory stays valid, with us_socket_is_closed() == 1, until the end of the
 *    current loop iteration (it is released before post_cb runs). Writing to it returns 0;
 *    closing it again does nothing.
 *  - The `ssl` argument: ssl = 1 contexts speak TLS (rustls, TLS 1.2 and 1.3), configured by
 *    struct us_socket_context_options_t (see us_create_socket_context). As upstream: on_open
 *    comes before the handshake; data written before it ends is held (up to 16 KiB) and sent
 *    when it ends; on_data gets plaintext; the peer's close_notify or FIN closes the socket (no
 *    on_end); us_socket_shutdown sends close_notify. Better than upstream: a client sends its
 *    ClientHello at connect, asks for the connect host by name (SNI) and, with a CA file, also
 *    checks that the certificate names that host. A build without TLS (capi/build.sh --no-tls,
 *    or the crate without its `tls` feature) defines LIBUS_NO_SSL below; then ssl = 1 is plain
 *    TCP and the options are ignored, as upstream built with LIBUS_NO_SSL.
 *  - No panic crosses this interface: an internal invariant failure aborts the process with a
 *    message.
 */

#ifndef LIBUSOCKETS_H
#define LIBUSOCKETS_H

/* Defined when this library was built without TLS (capi/build.sh --no-tls rewrites the next
 * line): ssl = 1 is then plain TCP. */
/* #define LIBUS_NO_SSL */

#include <stddef.h>

/* ------------------------------------------------------------------------------------------ */
/* Platform glue                                                                              */
/* ------------------------------------------------------------------------------------------ */

#ifdef _WIN32
#  ifndef NOMINMAX
#    define NOMINMAX
#  endif
#  include <winsock2.h>
#  define LIBUS_SOCKET_DESCRIPTOR SOCKET
#  define LIBUS_SOCKET_ERROR INVALID_SOCKET
#  ifndef WIN32_EXPORT
#    define WIN32_EXPORT __declspec(dllexport)
#  endif
#else
/* A native socket descriptor and the value that means "no descriptor" (on Windows: Winsock's
 * SOCKET and INVALID_SOCKET, above). */
#  define LIBUS_SOCKET_DESCRIPTOR int
#  define LIBUS_SOCKET_ERROR -1
/* Export annotation; nothing is needed on POSIX systems. */
#  define WIN32_EXPORT
#endif

/* The backend macro names the API variant a program compiles against, not the OS poller that
 * runs underneath: LIBUS_USE_EPOLL on Linux and LIBUS_USE_KQUEUE on the BSDs and Apple
 * systems, as upstream's header defines them there (uWebSockets tests them), unless the
 * program defined a backend macro itself (as upstream). On Windows none is defined: this
 * library's Windows backend is IOCP (with AFD poll requests) inside the library, and its API
 * is the plain one, which needs no macro (upstream's Windows build defines LIBUS_USE_LIBUV,
 * which this library is not). This header never defines LIBUS_USE_LIBUV (it would make
 * uWebSockets compile libuv code) nor LIBUS_USE_IO_URING (a different API:
 * us_socket_send_buffer). */
#if !defined(LIBUS_USE_EPOLL) && !defined(LIBUS_USE_LIBUV) && !defined(LIBUS_USE_KQUEUE) && \
    !defined(LIBUS_USE_GCD) && !defined(LIBUS_USE_ASIO) && !defined(LIBUS_USE_IO_URING)
#  if defined(_WIN32)
/* IOCP: no backend macro (see above). */
#  elif defined(__linux__)
#    define LIBUS_USE_EPOLL
#  elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
      defined(__OpenBSD__) || defined(__DragonFly__)
#    define LIBUS_USE_KQUEUE
#  endif
#endif

/* ------------------------------------------------------------------------------------------ */
/* Constants                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Size of the loop's shared receive buffer (the largest `length` on_data can see). The
 * prebuilt library always uses 524288: defining this macro differently before including the
 * header changes only what your own code sees, not the library. */
#ifndef LIBUS_RECV_BUFFER_LENGTH
#  define LIBUS_RECV_BUFFER_LENGTH 524288
#endif

/* Writable bytes guaranteed before and after the `data` pointer given to on_data. */
#define LIBUS_RECV_BUFFER_PADDING 32

/* Alignment, in bytes, of every ext memory area. */
#define LIBUS_EXT_ALIGNMENT 16

/* Seconds per socket-timeout tick (us_socket_timeout rounds up to this). */
#define LIBUS_TIMEOUT_GRANULARITY 4

/* Poll interest and readiness bits. The same values on every platform in this library
 * (upstream's epoll build uses 4 for writable; use the names, not the numbers). */
#define LIBUS_SOCKET_READABLE 1
#define LIBUS_SOCKET_WRITABLE 2

/* `options` of us_socket_context_listen / listen_unix. */
enum {
    /* SO_REUSEADDR and SO_REUSEPORT: several listeners may share a port. On Windows no port
     * is shared (SO_REUSEADDR there would let any socket take the port over): a second
     * listener on a port fails. */
    LIBUS_LISTEN_DEFAULT = 0,
    /* No SO_REUSEPORT: fails if anything else listens on the port (on Windows also
     * SO_EXCLUSIVEADDRUSE). */
    LIBUS_LISTEN_EXCLUSIVE_PORT = 1
};

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Opaque types (only pointers to them are ever used)                                         */
/* ------------------------------------------------------------------------------------------ */

struct us_loop_t;
struct us_socket_context_t;
struct us_socket_t;
struct us_listen_socket_t;
struct us_timer_t;
struct us_poll_t;
struct us_udp_socket_t;
struct us_udp_packet_buffer_t;

/* Convenience names, so C code may also write `us_socket_t *`. */
typedef struct us_loop_t us_loop_t;
typedef struct us_socket_context_t us_socket_context_t;
typedef struct us_socket_t us_socket_t;
typedef struct us_listen_socket_t us_listen_socket_t;
typedef struct us_timer_t us_timer_t;
typedef struct us_poll_t us_poll_t;
typedef struct us_udp_socket_t us_udp_socket_t;
typedef struct us_udp_packet_buffer_t us_udp_packet_buffer_t;

/* Options of a TLS context. Passed by value. Without TLS in this build the fields are ignored. */
struct us_socket_context_options_t {
    const char *key_file_name;
    const char *cert_file_name;
    const char *passphrase;
    const char *dh_params_file_name;
    const char *ca_file_name;
    const char *ssl_ciphers;
    int ssl_prefer_low_memory_usage;
};
typedef struct us_socket_context_options_t us_socket_context_options_t;

#if defined(__LP64__)
#  if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(struct us_socket_context_options_t) == 56,
              "us_socket_context_options_t must be 56 bytes on LP64");
#  elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct us_socket_context_options_t) == 56,
               "us_socket_context_options_t must be 56 bytes on LP64");
#  endif
#endif

/* ------------------------------------------------------------------------------------------ */
/* Loop (7)                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Creates an event loop with ext_size bytes of user ext (see us_loop_ext).
 * `hint` is ignored: this library does not run on top of a foreign (libuv/ASIO) loop.
 * wakeup_cb runs on the loop thread after us_wakeup_loop; pre_cb before each wait; post_cb
 * after each iteration's dispatch (closed sockets have been released by then). Any callback
 * may be NULL. */
WIN32_EXPORT struct us_loop_t *us_create_loop(void *hint,
                                              void (*wakeup_cb)(struct us_loop_t *loop),
                                              void (*pre_cb)(struct us_loop_t *loop),
                                              void (*post_cb)(struct us_loop_t *loop),
                                              unsigned int ext_size);

/* Frees the loop's own resources (poller, waker, receive buffer). As in the C library it closes
 * no socket, listen socket or poll descriptor and calls no callback: descriptors still open
 * stay open and are the program's to close. Close sockets and free contexts, timers and polls
 * first. */
WIN32_EXPORT void us_loop_free(struct us_loop_t *loop);

/* The loop's user ext, 16-byte aligned. */
WIN32_EXPORT void *us_loop_ext(struct us_loop_t *loop);

/* Runs the loop on the calling thread until no socket, listen socket, non-fallthrough timer
 * or non-fallthrough poll is left. */
WIN32_EXPORT void us_loop_run(struct us_loop_t *loop);

/* THREAD-SAFE. Makes the loop call its wakeup_cb on its own thread soon. */
WIN32_EXPORT void us_wakeup_loop(struct us_loop_t *loop);

/* Arms the socket-timeout sweep for a loop that is driven by something else than us_loop_run. */
WIN32_EXPORT void us_loop_integrate(struct us_loop_t *loop);

/* The iteration counter, incremented before each pre_cb. */
WIN32_EXPORT long long us_loop_iteration_number(struct us_loop_t *loop);

/* ------------------------------------------------------------------------------------------ */
/* Socket contexts, listening, connecting and adoption (23)                                   */
/* ------------------------------------------------------------------------------------------ */

/* A group of sockets sharing callbacks, with ext_size bytes of context ext. NULL on failure.
 * ssl = 1 (TLS; see the note at the top), from `options` (each NULL or a NUL-terminated string):
 *  - cert_file_name + key_file_name (PEM; the chain leaf first; a PKCS#1, SEC1 or PKCS#8 key):
 *    the certificate accepted sockets serve. Without them, only server names added with
 *    us_socket_context_add_server_name are served; other handshakes fail and the socket closes.
 *    A client context presents them to servers that ask for a client certificate.
 *  - passphrase: decrypts an encrypted PKCS#8 key ("ENCRYPTED PRIVATE KEY"). A legacy
 *    "Proc-Type: 4,ENCRYPTED" key is refused: convert it with `openssl pkcs8 -topk8`.
 *  - ca_file_name: a server requires client certificates issued by these CAs; a client checks
 *    the server's chain against them, and the host name too when it connects to a name (or the
 *    address when it connects to an address). Without it a client does not verify the server at
 *    all, as upstream (see us_socket_context_verify_platform_roots).
 *  - dh_params_file_name: must hold DH PARAMETERS (PEM), which are then unused: every key
 *    exchange offered is ECDHE, which needs none.
 *  - ssl_ciphers: OpenSSL cipher-list syntax choosing the TLS 1.2 suites (`HIGH:!aNULL:!MD5`,
 *    `ECDHE+AESGCM`, names like ECDHE-RSA-AES128-GCM-SHA256; ! - + prefixes; @STRENGTH and
 *    @SECLEVEL accepted); TLS 1.3 suites are not affected, as in OpenSSL. A list that selects no
 *    suite fails.
 *  - ssl_prefer_low_memory_usage: sessions free their buffers whenever they empty.
 * A file that is missing or unusable, or a key that does not fit its certificate, gives NULL.
 * All NULL: a valid context (a client that does not verify; a server with no certificate). */
WIN32_EXPORT struct us_socket_context_t *us_create_socket_context(int ssl, struct us_loop_t *loop,
                                                                  int ext_size,
                                                                  struct us_socket_context_options_t options);

/* A context meant as an adoption target, on the same loop as `context`. */
WIN32_EXPORT struct us_socket_context_t *us_create_child_socket_context(int ssl,
                                                                        struct us_socket_context_t *context,
                                                                        int context_ext_size);

/* Frees a context. Its sockets and listen sockets must be gone first. */
WIN32_EXPORT void us_socket_context_free(int ssl, struct us_socket_context_t *context);

/* The context's user ext, 16-byte aligned. */
WIN32_EXPORT void *us_socket_context_ext(int ssl, struct us_socket_context_t *context);

/* The loop the context belongs to. */
WIN32_EXPORT struct us_loop_t *us_socket_context_loop(int ssl, struct us_socket_context_t *context);

/* The current short timeout tick, 0..239 (one tick every LIBUS_TIMEOUT_GRANULARITY seconds). */
WIN32_EXPORT unsigned short us_socket_context_timestamp(int ssl, struct us_socket_context_t *context);

/* Closes every listen socket, then every socket of the context (on_close(s, 0, NULL) for
 * each). The context itself stays valid. */
WIN32_EXPORT void us_socket_context_close(int ssl, struct us_socket_context_t *context);

/* Called for each accepted descriptor before it becomes a socket. Return `fd` to let the
 * library adopt it; return anything else to keep it (you then own the descriptor). */
WIN32_EXPORT void us_socket_context_on_pre_open(int ssl, struct us_socket_context_t *context,
                                                LIBUS_SOCKET_DESCRIPTOR (*on_pre_open)(struct us_socket_context_t *context,
                                                                                       LIBUS_SOCKET_DESCRIPTOR fd,
                                                                                       char *ip, int ip_length));

/* A socket opened: accepted (is_client = 0, ip = 4 or 16 raw bytes; a dual-stack listener gives
 * IPv4 peers as 16-byte IPv4-mapped addresses) or connected (is_client = 1, ip = NULL, 0). */
WIN32_EXPORT void us_socket_context_on_open(int ssl, struct us_socket_context_t *context,
                                            struct us_socket_t *(*on_open)(struct us_socket_t *s, int is_client,
                                                                           char *ip, int ip_length));

/* A socket closed. Runs synchronously inside us_socket_close with the caller's code and
 * reason; closes started by the library pass 0 and NULL. Its return value is what
 * us_socket_close returns. */
WIN32_EXPORT void us_socket_context_on_close(int ssl, struct us_socket_context_t *context,
                                             struct us_socket_t *(*on_close)(struct us_socket_t *s, int code,
                                                                             void *reason));

/* Received bytes, length > 0 (at most LIBUS_RECV_BUFFER_LENGTH). The buffer is the loop's,
 * valid during the call only; it may be modified, and LIBUS_RECV_BUFFER_PADDING (32) bytes
 * before data and after data + length are writable too. */
WIN32_EXPORT void us_socket_context_on_data(int ssl, struct us_socket_context_t *context,
                                            struct us_socket_t *(*on_data)(struct us_socket_t *s, char *data,
                                                                           int length));

/* The socket can take more data after an earlier short write. */
WIN32_EXPORT void us_socket_context_on_writable(int ssl, struct us_socket_context_t *context,
                                                struct us_socket_t *(*on_writable)(struct us_socket_t *s));

/* The one-shot timeout set by us_socket_timeout expired. */
WIN32_EXPORT void us_socket_context_on_timeout(int ssl, struct us_socket_context_t *context,
                                               struct us_socket_t *(*on_timeout)(struct us_socket_t *s));

/* The one-shot timeout set by us_socket_long_timeout expired. */
WIN32_EXPORT void us_socket_context_on_long_timeout(int ssl, struct us_socket_context_t *context,
                                                    struct us_socket_t *(*on_long_timeout)(struct us_socket_t *s));

/* A connect failed. `code` is the raw OS error (errno: ECONNREFUSED, ETIMEDOUT, ...; on
 * Windows the Winsock code: WSAECONNREFUSED, WSAETIMEDOUT, ...), always positive; a name that
 * does not resolve gives ENXIO (6 on Linux and the BSDs; on Windows WSAHOST_NOT_FOUND, 11001).
 * The socket is released afterwards without on_close. */
WIN32_EXPORT void us_socket_context_on_connect_error(int ssl, struct us_socket_context_t *context,
                                                     struct us_socket_t *(*on_connect_error)(struct us_socket_t *s,
                                                                                             int code));

/* The peer half-closed (sent FIN) while our side is still open for writing. Reading stops;
 * the socket stays open until you close it. */
WIN32_EXPORT void us_socket_context_on_end(int ssl, struct us_socket_context_t *context,
                                           struct us_socket_t *(*on_end)(struct us_socket_t *s));

/* Listens on host:port (host NULL = every interface, dual-stack; port 0 = an ephemeral port;
 * backlog 512). Accepted sockets get socket_ext_size bytes of zeroed ext. NULL on failure.
 * A us_listen_socket_t * may be cast to us_socket_t * for us_socket_local_port. */
WIN32_EXPORT struct us_listen_socket_t *us_socket_context_listen(int ssl, struct us_socket_context_t *context,
                                                                 const char *host, int port, int options,
                                                                 int socket_ext_size);

/* The same on a Unix domain socket path. The socket file is created with mode 0700 less the
 * umask (0700 under any usual umask: only the owner may connect), as upstream makes it (on
 * Windows, which has AF_UNIX since 10 1803 and gives NULL before, the file gets its
 * directory's ACL). A path already taken is reused only if it is a stale socket file nobody
 * answers on (a listener that closed or died: the file stays after close), which is unlinked
 * first; unlike upstream, a live server's path is not stolen (NULL; the live server sees a
 * connection that closes at once) and a file that is not a socket is never unlinked. A name
 * starting with a NUL byte (Linux's abstract namespace) has no file: nothing is unlinked or
 * chmod-ed. */
WIN32_EXPORT struct us_listen_socket_t *us_socket_context_listen_unix(int ssl, struct us_socket_context_t *context,
                                                                      const char *path, int options,
                                                                      int socket_ext_size);

/* Stops listening. The memory is released at the end of the loop iteration. */
WIN32_EXPORT void us_listen_socket_close(int ssl, struct us_listen_socket_t *ls);

/* Turns a descriptor accepted elsewhere into a socket of `context` and calls on_open
 * (is_client = 0, ip, ip_length) before returning. */
WIN32_EXPORT struct us_socket_t *us_adopt_accepted_socket(int ssl, struct us_socket_context_t *context,
                                                          LIBUS_SOCKET_DESCRIPTOR client_fd,
                                                          unsigned int socket_ext_size, char *ip, int ip_length);

/* Starts a non-blocking connect (source_host: NULL or a local address to bind first).
 * Returns NULL only for bad arguments or exhausted capacity: every network or name-resolution
 * failure, an immediate refusal included, arrives later through on_connect_error with the raw
 * OS error code. Success arrives through on_open(is_client = 1). */
WIN32_EXPORT struct us_socket_t *us_socket_context_connect(int ssl, struct us_socket_context_t *context,
                                                           const char *host, int port, const char *source_host,
                                                           int options, int socket_ext_size);

/* The same to a Unix domain socket path. */
WIN32_EXPORT struct us_socket_t *us_socket_context_connect_unix(int ssl, struct us_socket_context_t *context,
                                                                const char *server_path, int options,
                                                                int socket_ext_size);

/* Moves an open socket to `context` with ext_size bytes of ext, keeping the first
 * min(old, new) ext bytes. The socket may move in memory: use the returned pointer only (and
 * return it from the callback you are in). Timeouts are reset. A closed socket is returned
 * unchanged. */
WIN32_EXPORT struct us_socket_t *us_socket_context_adopt_socket(int ssl, struct us_socket_context_t *context,
                                                                struct us_socket_t *s, int ext_size);

/* ------------------------------------------------------------------------------------------ */
/* Sockets (18)                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* The context the socket belongs to. */
WIN32_EXPORT struct us_socket_context_t *us_socket_context(int ssl, struct us_socket_t *s);

/* The socket's user ext, 16-byte aligned. */
WIN32_EXPORT void *us_socket_ext(int ssl, struct us_socket_t *s);

/* Writes up to length bytes; returns how many were accepted (never negative; 0 when closed,
 * shut down or the kernel buffer is full). A short write makes on_writable fire later. There
 * is no write queue: keep what was not accepted. msg_more != 0 hints that more follows. */
WIN32_EXPORT int us_socket_write(int ssl, struct us_socket_t *s, const char *data, int length, int msg_more);

/* Gathered write of header then payload, same return rules. Works with ssl = 1 too. */
WIN32_EXPORT int us_socket_write2(int ssl, struct us_socket_t *s, const char *header, int header_length,
                                  const char *payload, int payload_length);

/* The socket's single short one-shot timeout, in seconds, rounded up to 4-second ticks; it
 * fires no sooner than `seconds` and no later than seconds + 4. 0 disables it. */
WIN32_EXPORT void us_socket_timeout(int ssl, struct us_socket_t *s, unsigned int seconds);

/* The same in minutes (on_long_timeout). 0 disables it. */
WIN32_EXPORT void us_socket_long_timeout(int ssl, struct us_socket_t *s, unsigned int minutes);

/* Withdraws a msg_more hold so pending bytes leave now. */
WIN32_EXPORT void us_socket_flush(int ssl, struct us_socket_t *s);

/* Sends FIN; further writes return 0. Idempotent. */
WIN32_EXPORT void us_socket_shutdown(int ssl, struct us_socket_t *s);

/* Shuts the read side down; the loop then sees end-of-stream on this socket. */
WIN32_EXPORT void us_socket_shutdown_read(int ssl, struct us_socket_t *s);

/* 1 if the write side is shut down. */
WIN32_EXPORT int us_socket_is_shut_down(int ssl, struct us_socket_t *s);

/* 1 after close, until the memory is released at the end of the iteration. */
WIN32_EXPORT int us_socket_is_closed(int ssl, struct us_socket_t *s);

/* 0 while a client connect is pending, 1 otherwise. */
WIN32_EXPORT int us_socket_is_established(int ssl, struct us_socket_t *s);

/* Aborts a pending connect without calling on_close. */
WIN32_EXPORT struct us_socket_t *us_socket_close_connecting(int ssl, struct us_socket_t *s);

/* Closes now and calls on_close(s, code, reason) synchronously; returns what on_close
 * returned. Does nothing (returns s) if the socket is already closed. A write that fails hard
 * (EPIPE, ECONNRESET: not backpressure) returns 0 and closes the socket with on_close(s, 0,
 * NULL) as soon as the callback that wrote returns. */
WIN32_EXPORT struct us_socket_t *us_socket_close(int ssl, struct us_socket_t *s, int code, void *reason);

/* The local port, or -1 (e.g. Unix sockets). A listen socket cast to us_socket_t * works. */
WIN32_EXPORT int us_socket_local_port(int ssl, struct us_socket_t *s);

/* The peer's port, or -1. */
WIN32_EXPORT int us_socket_remote_port(int ssl, struct us_socket_t *s);

/* Copies the peer's raw IP (4 or 16 bytes) into buf. *length is buf's capacity on input and
 * the copied length on output; 0 on failure (no address, or capacity too small). */
WIN32_EXPORT void us_socket_remote_address(int ssl, struct us_socket_t *s, char *buf, int *length);

/* STUB: upstream's io_uring-only send buffer. Always returns NULL here. */
WIN32_EXPORT char *us_socket_send_buffer(int ssl, struct us_socket_t *s);

/* ------------------------------------------------------------------------------------------ */
/* Polls: watching any descriptor (10 + 1 non-upstream)                                       */
/* ------------------------------------------------------------------------------------------ */
/* A us_socket_t * may be cast to us_poll_t * for us_poll_events, us_poll_change (pause and
 * resume reading: events 0 / LIBUS_SOCKET_READABLE), us_poll_ext and us_poll_fd. */

/* A poll with ext_size bytes of ext. A non-fallthrough poll keeps us_loop_run running until
 * it is freed. */
WIN32_EXPORT struct us_poll_t *us_create_poll(struct us_loop_t *loop, int fallthrough, unsigned int ext_size);

/* Frees a poll (stop it first). Its descriptor stays open: it is the caller's. */
WIN32_EXPORT void us_poll_free(struct us_poll_t *p, struct us_loop_t *loop);

/* Sets the descriptor to watch; it must stay open while the poll watches it, and the library
 * never closes it. poll_type is upstream's internal kind; pass 0 for a user poll. */
WIN32_EXPORT void us_poll_init(struct us_poll_t *p, LIBUS_SOCKET_DESCRIPTOR fd, int poll_type);

/* Starts watching for `events` (LIBUS_SOCKET_READABLE | LIBUS_SOCKET_WRITABLE). */
WIN32_EXPORT void us_poll_start(struct us_poll_t *p, struct us_loop_t *loop, int events);

/* Changes the watched events. */
WIN32_EXPORT void us_poll_change(struct us_poll_t *p, struct us_loop_t *loop, int events);

/* Stops watching; readiness not yet dispatched in this iteration is dropped. */
WIN32_EXPORT void us_poll_stop(struct us_poll_t *p, struct us_loop_t *loop);

/* The watched events. */
WIN32_EXPORT int us_poll_events(struct us_poll_t *p);

/* The poll's user ext, 16-byte aligned. */
WIN32_EXPORT void *us_poll_ext(struct us_poll_t *p);

/* The watched descriptor. */
WIN32_EXPORT LIBUS_SOCKET_DESCRIPTOR us_poll_fd(struct us_poll_t *p);

/* Resizes the poll's ext, keeping the first min(old, new) bytes. The poll may move: use the
 * returned pointer only. */
WIN32_EXPORT struct us_poll_t *us_poll_resize(struct us_poll_t *p, struct us_loop_t *loop, unsigned int ext_size);

/* NON-UPSTREAM (usockets-rs extension; upstream has no public way to receive a poll's events).
 * Sets the function called when a user poll is ready: `events` holds the
 * LIBUS_SOCKET_READABLE / LIBUS_SOCKET_WRITABLE bits that are ready, `error` is 1 on an error
 * or hang-up of the descriptor (0 otherwise). `p` is the poll's current address. Only for polls
 * made with us_create_poll. Guard uses with #ifdef LIBUS_HAS_POLL_READY_CALLBACK. */
#define LIBUS_HAS_POLL_READY_CALLBACK 1
WIN32_EXPORT void us_poll_set_ready_callback(struct us_poll_t *p,
                                             void (*cb)(struct us_poll_t *p, int events, int error));

/* ------------------------------------------------------------------------------------------ */
/* Timers (5)                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* A millisecond timer with ext_size bytes of ext. fallthrough = 1: it does not keep
 * us_loop_run running. NULL on failure. */
WIN32_EXPORT struct us_timer_t *us_create_timer(struct us_loop_t *loop, int fallthrough, unsigned int ext_size);

/* The timer's user ext, 16-byte aligned. */
WIN32_EXPORT void *us_timer_ext(struct us_timer_t *timer);

/* Stops and frees the timer; allowed inside its own callback. */
WIN32_EXPORT void us_timer_close(struct us_timer_t *timer);

/* (Re)arms: first call after ms, then every repeat_ms (0 = once). ms = 0 and repeat_ms = 0
 * disarm. Any repeat_ms is allowed. */
WIN32_EXPORT void us_timer_set(struct us_timer_t *timer, void (*cb)(struct us_timer_t *t), int ms, int repeat_ms);

/* The loop the timer belongs to. */
WIN32_EXPORT struct us_loop_t *us_timer_loop(struct us_timer_t *t);

/* ------------------------------------------------------------------------------------------ */
/* TLS and SNI (7, and one non-upstream)                                                      */
/* ------------------------------------------------------------------------------------------ */
/* With ssl = 0, on a plain context, or in a LIBUS_NO_SSL build these do nothing and return NULL. */

/* ssl = 0: the socket's descriptor cast to a pointer (on Windows its SOCKET). ssl = 1: NULL
 * (there is no SSL *). */
WIN32_EXPORT void *us_socket_get_native_handle(int ssl, struct us_socket_t *s);

/* NULL (there is no SSL_CTX *). */
WIN32_EXPORT void *us_socket_context_get_native_handle(int ssl, struct us_socket_context_t *context);

/* Serves the certificate and key of `options` (cert_file_name, key_file_name, passphrase) to
 * clients asking for a name `hostname_pattern` matches: a host name whose label `*` matches
 * exactly one label, in any position (`*.example.com`, `*.google.*`); at most 10 labels. A name
 * several patterns match gets the one with the fewest `*`. Replaces an entry with the same
 * pattern; an unusable file or pattern adds nothing. `user` is for
 * us_socket_server_name_userdata. Child contexts share their parent's names. */
WIN32_EXPORT void us_socket_context_add_server_name(int ssl, struct us_socket_context_t *context,
                                                    const char *hostname_pattern,
                                                    struct us_socket_context_options_t options, void *user);

/* Removes the entry of `hostname_pattern`. */
WIN32_EXPORT void us_socket_context_remove_server_name(int ssl, struct us_socket_context_t *context,
                                                       const char *hostname_pattern);

/* cb(context, hostname) runs, inside the handshake, when a client asks for a name no entry
 * matches, before the default certificate is used; it may add the name with
 * us_socket_context_add_server_name, and that entry serves this very handshake. From inside it
 * call only the server-name functions and us_socket_context_ext. NULL stops the calls. */
WIN32_EXPORT void us_socket_context_on_server_name(int ssl, struct us_socket_context_t *context,
                                                   void (*cb)(struct us_socket_context_t *context,
                                                              const char *hostname));

/* The `user` of the entry serving the name the client of server socket `s` asked for; NULL if
 * the default certificate served it. */
WIN32_EXPORT void *us_socket_server_name_userdata(int ssl, struct us_socket_t *s);

/* The `user` of the entry serving `hostname_pattern` (a pattern, or a name one matches). */
WIN32_EXPORT void *us_socket_context_find_server_name_userdata(int ssl, struct us_socket_context_t *context,
                                                               const char *hostname_pattern);

/* NOT UPSTREAM. Connects of the ssl = 1 context `context` that has no CA file verify servers
 * against the platform's trusted roots (chain and host name) instead of not at all. Returns 0,
 * or -1 (not a TLS context, a LIBUS_NO_SSL build, or no platform roots found). Call it before
 * creating child contexts, which copy the configuration when made. Guard uses with
 * #ifdef LIBUS_HAS_VERIFY_PLATFORM_ROOTS. */
#define LIBUS_HAS_VERIFY_PLATFORM_ROOTS 1
WIN32_EXPORT int us_socket_context_verify_platform_roots(int ssl, struct us_socket_context_t *context);

/* ------------------------------------------------------------------------------------------ */
/* UDP (13) - STUBS                                                                           */
/* ------------------------------------------------------------------------------------------ */
/* UDP is not implemented yet. These functions exist so programs link; they do nothing:
 * functions returning a pointer return NULL, functions returning int return -1, and
 * us_udp_buffer_set_packet_payload does nothing. us_udp_socket_bind (declared, never defined
 * upstream) is such a stub too. */

WIN32_EXPORT struct us_udp_packet_buffer_t *us_create_udp_packet_buffer(void);
WIN32_EXPORT struct us_udp_socket_t *us_create_udp_socket(struct us_loop_t *loop, struct us_udp_packet_buffer_t *buf,
                                                          void (*data_cb)(struct us_udp_socket_t *s,
                                                                          struct us_udp_packet_buffer_t *buf,
                                                                          int num_packets),
                                                          void (*drain_cb)(struct us_udp_socket_t *s),
                                                          const char *host, unsigned short port, void *user);
WIN32_EXPORT int us_udp_socket_receive(struct us_udp_socket_t *s, struct us_udp_packet_buffer_t *buf);
WIN32_EXPORT int us_udp_socket_send(struct us_udp_socket_t *s, struct us_udp_packet_buffer_t *buf, int num);
WIN32_EXPORT void us_udp_buffer_set_packet_payload(struct us_udp_packet_buffer_t *send_buf, int index, int offset,
                                                   void *payload, int length, void *peer_addr);
WIN32_EXPORT char *us_udp_packet_buffer_payload(struct us_udp_packet_buffer_t *buf, int index);
WIN32_EXPORT int us_udp_packet_buffer_payload_length(struct us_udp_packet_buffer_t *buf, int index);
WIN32_EXPORT char *us_udp_packet_buffer_peer(struct us_udp_packet_buffer_t *buf, int index);
WIN32_EXPORT int us_udp_packet_buffer_local_ip(struct us_udp_packet_buffer_t *buf, int index, char *ip);
WIN32_EXPORT int us_udp_packet_buffer_ecn(struct us_udp_packet_buffer_t *buf, int index);
WIN32_EXPORT int us_udp_socket_bound_port(struct us_udp_socket_t *s);
WIN32_EXPORT void *us_udp_socket_user(struct us_udp_socket_t *s);
WIN32_EXPORT int us_udp_socket_bind(struct us_udp_socket_t *s, const char *hostname, unsigned int port);

#ifdef __cplusplus
}
#endif

#endif /* LIBUSOCKETS_H */
