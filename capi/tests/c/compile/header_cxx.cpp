// Compile-only check (C++17): libusockets.h compiles with -std=c++17 -Wall -Wextra -Werror
// -pedantic, declares its functions with C linkage inside extern "C", its constants have the
// contract's values, and every function has exactly the contract's signature.
#include "libusockets.h"
#include "libusockets.h"

#include <cstddef>
#include <type_traits>

static_assert(LIBUS_RECV_BUFFER_LENGTH == 524288);
static_assert(LIBUS_RECV_BUFFER_PADDING == 32);
static_assert(LIBUS_EXT_ALIGNMENT == 16);
static_assert(LIBUS_TIMEOUT_GRANULARITY == 4);
static_assert(LIBUS_LISTEN_DEFAULT == 0);
static_assert(LIBUS_LISTEN_EXCLUSIVE_PORT == 1);
static_assert(LIBUS_SOCKET_READABLE == 1);
static_assert(LIBUS_SOCKET_WRITABLE == 2);
#ifdef _WIN32
// Winsock's SOCKET (UINT_PTR) and INVALID_SOCKET (~0); no backend macro (IOCP is inside).
static_assert(LIBUS_SOCKET_ERROR == INVALID_SOCKET);
static_assert(std::is_same<LIBUS_SOCKET_DESCRIPTOR, SOCKET>::value);
static_assert(std::is_unsigned<LIBUS_SOCKET_DESCRIPTOR>::value && sizeof(LIBUS_SOCKET_DESCRIPTOR) == sizeof(void *));
#if defined(LIBUS_USE_EPOLL) || defined(LIBUS_USE_KQUEUE) || defined(LIBUS_USE_LIBUV)
#error "libusockets.h must define no backend macro on Windows"
#endif
#else
static_assert(LIBUS_SOCKET_ERROR == -1);
static_assert(std::is_same<LIBUS_SOCKET_DESCRIPTOR, int>::value);
#endif
#if defined(__LP64__) || defined(_WIN64)
static_assert(sizeof(us_socket_context_options_t) == 56);
static_assert(offsetof(us_socket_context_options_t, ssl_prefer_low_memory_usage) == 48);
static_assert(std::is_standard_layout<us_socket_context_options_t>::value);
#endif

#define SIG(name, ret, params) \
    static_assert(std::is_same<decltype(&name), ret(*) params>::value, "signature of " #name);
#include "signatures.inc"

// uWS style: the C++ names without `struct`, and incomplete (opaque) types.
static_assert(std::is_same<us_socket_t, struct us_socket_t>::value);
template <typename X, typename = void> struct is_complete : std::false_type {};
template <typename X> struct is_complete<X, decltype(void(sizeof(X)))> : std::true_type {};
static_assert(!is_complete<us_socket_t>::value && !is_complete<us_loop_t>::value &&
              !is_complete<us_poll_t>::value && !is_complete<us_listen_socket_t>::value);

int main() {
    us_socket_context_options_t options = {};
    (void)options;
    return 0;
}
