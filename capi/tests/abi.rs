//! The C ABI driven from Rust as a C program would drive it: `extern "C"` callbacks that
//! re-enter `us_*` functions while the loop runs, adoption that moves the socket block, closes
//! from inside callbacks, timers closing themselves, ext memory checked throughout.
//!
//! With `--features sim` it runs on the simulated OS, which is how Miri checks the FFI layer:
//! `cargo +nightly miri test -p usockets-capi --features sim --test abi`.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;

use usockets_capi::ffi::context::*;
use usockets_capi::ffi::loops::*;
use usockets_capi::ffi::socket::*;
use usockets_capi::ffi::timer::*;
use usockets_capi::types::*;

/// What the test's "C program" keeps in the loop ext.
#[repr(C)]
struct World {
    server_ctx: *mut us_socket_context_t,
    child_ctx: *mut us_socket_context_t,
    listener: *mut us_listen_socket_t,
    timer: *mut us_timer_t,
    opens: u32,
    closes: u32,
    echoed: u32,
    adopted: u32,
    timer_fires: u32,
    /// Set when the watchdog had to close the timer (it should close itself).
    timer_forced: bool,
    iterations: u32,
    ends: u32,
    client_got: u32,
}

/// Iterations after which `on_post` closes a timer that has not closed itself, so that a timer
/// which never fires fails the test instead of keeping the loop alive for ever.
const WATCHDOG_ITERATIONS: u32 = 10_000;

const MAGIC: u64 = 0x5EED_CAFE_F00D_BEEF;

/// The `reason` passed to `us_socket_close`, checked in `on_close`.
static REASON: u8 = 0;

fn reason() -> *mut c_void {
    std::ptr::addr_of!(REASON).cast_mut().cast()
}

unsafe fn world(s: *mut us_socket_t) -> *mut World {
    // SAFETY: test code; pointers come from the library.
    unsafe { us_loop_ext(us_socket_context_loop(0, us_socket_context(0, s))).cast() }
}

unsafe extern "C" fn on_open(
    s: *mut us_socket_t,
    is_client: c_int,
    _ip: *mut c_char,
    _len: c_int,
) -> *mut us_socket_t {
    // SAFETY: test code.
    unsafe {
        let ext = us_socket_ext(0, s).cast::<u64>();
        assert_eq!(ext as usize % 16, 0, "ext 16-byte aligned");
        assert_eq!(*ext, 0, "fresh ext is zeroed");
        *ext = MAGIC;
        (*world(s)).opens += 1;
        if is_client == 1 {
            assert_eq!(us_socket_write(0, s, b"hello".as_ptr().cast(), 5, 0), 5);
        }
    }
    s
}

unsafe extern "C" fn server_data(
    s: *mut us_socket_t,
    data: *mut c_char,
    len: c_int,
) -> *mut us_socket_t {
    // SAFETY: test code; `data` has 32 writable bytes on each side.
    unsafe {
        assert_eq!(
            *us_socket_ext(0, s).cast::<u64>(),
            MAGIC,
            "ext before adoption"
        );
        // Fence writes past the end and a header before the start, as HTTP/WebSocket parsers do.
        *data.add(len as usize) = 0;
        *data.add(len as usize + 1) = 0;
        std::ptr::write_bytes(data.sub(13), 0x42, 13);
        let w = world(s);
        let child = (*w).child_ctx;
        let moved = us_socket_context_adopt_socket(0, child, s, 4096);
        assert_ne!(moved, s, "a bigger ext moves the block");
        assert_eq!(
            *us_socket_ext(0, moved).cast::<u64>(),
            MAGIC,
            "ext prefix kept"
        );
        assert_eq!(us_socket_context(0, moved), child);
        (*w).adopted += 1;
        assert_eq!(us_socket_write(0, moved, data, len, 0), len);
        (*w).echoed += 1;
        moved
    }
}

unsafe extern "C" fn client_data(
    s: *mut us_socket_t,
    data: *mut c_char,
    len: c_int,
) -> *mut us_socket_t {
    // SAFETY: test code.
    unsafe {
        let got = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
        assert_eq!(got, b"hello");
        (*world(s)).client_got += 1;
        let ret = us_socket_close(0, s, 7, reason());
        assert_eq!(ret, s, "us_socket_close returns on_close's return");
        assert_eq!(
            us_socket_is_closed(0, s),
            1,
            "closed but still valid this iteration"
        );
        assert_eq!(
            us_socket_write(0, s, b"x".as_ptr().cast(), 1, 0),
            0,
            "write after close"
        );
        assert_eq!(
            us_socket_close(0, s, 9, null_mut()),
            s,
            "second close is a no-op"
        );
        s
    }
}

unsafe extern "C" fn on_close(
    s: *mut us_socket_t,
    code: c_int,
    reason: *mut c_void,
) -> *mut us_socket_t {
    // SAFETY: test code.
    unsafe {
        assert_eq!(
            *us_socket_ext(0, s).cast::<u64>(),
            MAGIC,
            "ext valid in on_close"
        );
        let w = world(s);
        (*w).closes += 1;
        if code == 7 {
            assert_eq!(reason, self::reason());
        } else {
            assert_eq!(
                (code, reason),
                (0, null_mut()),
                "library closes pass (0, NULL)"
            );
        }
        if (*w).closes == 2 {
            let ls = (*w).listener;
            us_listen_socket_close(0, ls);
        }
    }
    s
}

unsafe extern "C" fn on_end(s: *mut us_socket_t) -> *mut us_socket_t {
    // SAFETY: test code.
    unsafe {
        (*world(s)).ends += 1;
        us_socket_shutdown(0, s);
        us_socket_close(0, s, 0, null_mut())
    }
}

unsafe extern "C" fn on_timer(t: *mut us_timer_t) {
    // SAFETY: test code.
    unsafe {
        let w: *mut World = us_loop_ext(us_timer_loop(t)).cast();
        (*w).timer_fires += 1;
        if (*w).timer_fires == 3 {
            us_timer_close(t);
            (*w).timer = null_mut();
        }
    }
}

/// `post_cb`: the watchdog.
unsafe extern "C" fn on_post(lp: *mut us_loop_t) {
    // SAFETY: test code; `lp` is the live loop whose ext is the World.
    unsafe {
        let w: *mut World = us_loop_ext(lp).cast();
        (*w).iterations += 1;
        if (*w).iterations >= WATCHDOG_ITERATIONS && !(*w).timer.is_null() {
            us_timer_close((*w).timer);
            (*w).timer = null_mut();
            (*w).timer_forced = true;
        }
    }
}

fn options() -> us_socket_context_options_t {
    us_socket_context_options_t {
        key_file_name: std::ptr::null(),
        cert_file_name: std::ptr::null(),
        passphrase: std::ptr::null(),
        dh_params_file_name: std::ptr::null(),
        ca_file_name: std::ptr::null(),
        ssl_ciphers: std::ptr::null(),
        ssl_prefer_low_memory_usage: 0,
    }
}

#[test]
fn echo_with_adoption_close_in_callbacks_and_a_self_closing_timer() {
    // SAFETY: test code, used as the C contract says.
    unsafe {
        let lp = us_create_loop(
            null_mut(),
            None,
            None,
            Some(on_post),
            std::mem::size_of::<World>() as u32,
        );
        assert!(!lp.is_null());
        let w: *mut World = us_loop_ext(lp).cast();
        w.write(World {
            server_ctx: null_mut(),
            child_ctx: null_mut(),
            listener: null_mut(),
            timer: null_mut(),
            opens: 0,
            closes: 0,
            echoed: 0,
            adopted: 0,
            timer_fires: 0,
            timer_forced: false,
            iterations: 0,
            ends: 0,
            client_got: 0,
        });

        let server = us_create_socket_context(0, lp, 32, options());
        let child = us_create_child_socket_context(0, server, 8);
        // ssl = 1 is TLS in the default build (test_tls covers it) and plain TCP without the
        // `tls` feature (Miri's build): plain here keeps this test the same in both.
        let client = us_create_socket_context(0, lp, 0, options());
        for ctx in [server, child, client] {
            assert!(!ctx.is_null());
            us_socket_context_on_open(0, ctx, Some(on_open));
            us_socket_context_on_close(0, ctx, Some(on_close));
            us_socket_context_on_end(0, ctx, Some(on_end));
        }
        us_socket_context_on_data(0, server, Some(server_data));
        us_socket_context_on_data(0, child, Some(server_data));
        (*w).server_ctx = server;
        (*w).child_ctx = child;

        let ls = us_socket_context_listen(0, server, c"127.0.0.1".as_ptr(), 0, 0, 16);
        assert!(!ls.is_null());
        (*w).listener = ls;
        let port = us_socket_local_port(0, ls);
        assert!(port > 0, "a listen socket works as a socket for local_port");

        let s = us_socket_context_connect(1, client, c"127.0.0.1".as_ptr(), port, null_mut(), 0, 8);
        assert!(!s.is_null());
        assert_eq!(us_socket_is_established(1, s), 0, "connect is pending");
        // Set after the socket exists: a socket's callbacks are its context's, read at each call.
        us_socket_context_on_data(1, client, Some(client_data));

        // Not fallthrough: the loop runs until the timer has closed itself in its third firing
        // (or the watchdog closed it).
        let t = us_create_timer(lp, 0, 4);
        assert!(!t.is_null());
        us_timer_set(t, Some(on_timer), 10, 10);
        (*w).timer = t;

        us_loop_run(lp);

        let w = &*w;
        assert_eq!(w.timer_fires, 3, "the repeating timer fired three times");
        assert!(
            w.timer.is_null() && !w.timer_forced,
            "the timer closed itself in its third firing (not the watchdog)"
        );
        assert_eq!(
            (w.opens, w.closes),
            (2, 2),
            "both ends opened and closed once"
        );
        assert_eq!((w.echoed, w.client_got, w.adopted), (1, 1, 1));
        assert!(w.ends >= 1, "server saw the client's FIN");
        for ctx in [child, server, client] {
            us_socket_context_free(0, ctx);
        }
        us_loop_free(lp);
    }
}

#[test]
fn loop_free_frees_what_the_program_left_alive() {
    // SAFETY: test code, used as the C contract says.
    unsafe {
        let lp = us_create_loop(null_mut(), None, None, None, 8);
        assert!(!lp.is_null());
        let ctx = us_create_socket_context(0, lp, 16, options());
        let child = us_create_child_socket_context(0, ctx, 8);
        assert!(!ctx.is_null() && !child.is_null());
        us_socket_context_on_open(0, ctx, Some(on_open));
        let ls = us_socket_context_listen(0, ctx, c"127.0.0.1".as_ptr(), 0, 0, 16);
        assert!(!ls.is_null());
        let port = us_socket_local_port(0, ls);
        let s = us_socket_context_connect(0, ctx, c"127.0.0.1".as_ptr(), port, null_mut(), 0, 8);
        assert!(!s.is_null());
        *us_socket_ext(0, s).cast::<u64>() = MAGIC;
        // A bigger ext moves the block: the old one is freed, the new one registered.
        let moved = us_socket_context_adopt_socket(0, child, s, 64);
        assert!(!moved.is_null() && moved != s);
        assert_eq!(*us_socket_ext(0, moved).cast::<u64>(), MAGIC);
        assert_eq!(us_socket_context(0, moved), child);
        let t = us_create_timer(lp, 0, 16);
        us_timer_set(t, Some(on_timer), 1000, 0);
        // Nothing is freed or closed by the program: us_loop_free frees the memory of the
        // contexts, the listen socket, the socket and the timer (Miri reports any leak).
        us_loop_free(lp);
    }
}

/// A program that keeps using a socket's old pointer after adoption moved its block (with the
/// same ext size the C library's realloc often keeps the pointer, so such programs exist)
/// acts on nothing: the freed block reads as no socket, rather than as the handle of another
/// live socket.
#[test]
fn a_stale_pointer_after_adoption_moved_the_block_is_rejected() {
    // SAFETY: test code, used as the C contract says but for the stale pointer, whose block
    // is freed but still in its chunk (the chunk holds `x`).
    unsafe {
        let lp = us_create_loop(null_mut(), None, None, None, 0);
        let a = us_create_socket_context(0, lp, 0, options());
        let b = us_create_socket_context(0, lp, 0, options());
        let x = us_socket_context_connect(0, a, c"127.0.0.1".as_ptr(), 9, null_mut(), 0, 16);
        let y = us_socket_context_connect(0, a, c"127.0.0.1".as_ptr(), 9, null_mut(), 0, 16);
        assert!(!x.is_null() && !y.is_null());
        let moved = us_socket_context_adopt_socket(0, b, y, 16);
        assert!(
            !moved.is_null() && moved != y,
            "another context: the block moved"
        );
        // The misuse: closing through the old pointer.
        us_socket_close(0, y, 0, null_mut());
        assert_eq!(us_socket_is_closed(0, x), 0, "x is untouched");
        assert_eq!(
            us_socket_is_closed(0, moved),
            0,
            "the adopted socket is untouched"
        );
        assert_eq!(us_socket_context(0, moved), b);
        us_loop_free(lp);
    }
}
