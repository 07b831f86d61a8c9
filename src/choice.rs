//! Choosing the shim: [`PlatformShim`] says how a shim is made, so [`new_loop_on`](crate::new_loop_on)
//! can build a loop on any of them; [`ShimChoice`] (Linux) names one at run time.
//!
//! The choice is a type parameter (`App<…, Sh>`), so a program that picks at run time
//! monomorphises its code once per shim and matches once, at startup: no call goes through
//! a vtable or a per-call branch.

use std::io;

use usockets_core::{OsShim, ShimError};

/// A shim that can make itself with its default settings: the platform's
/// ([`DefaultShim`](crate::DefaultShim)) and, on Linux, io_uring's
/// (`uring::UringShim`). A shim made with other settings
/// (e.g. `UringShim::with_config`) goes to [`new_loop_with`](crate::new_loop_with) instead.
pub trait PlatformShim: OsShim + Sized {
    /// A short name for messages: `"epoll"`, `"io_uring"`, `"kqueue"` or `"IOCP"`.
    const NAME: &'static str;

    /// Makes the shim. Fails when the OS refuses (no descriptor left; for io_uring, kind
    /// [`io::ErrorKind::Unsupported`] where the kernel has none or forbids it).
    fn create() -> io::Result<Self>;
}

/// The `io::Error` of a shim's error: the OS's code when it has one.
fn os_error<E: ShimError>(e: E) -> io::Error {
    match e.raw_os_error() {
        0 => io::Error::other(format!("{:?}", e.kind())),
        code => io::Error::from_raw_os_error(code),
    }
}

#[cfg(target_os = "linux")]
impl PlatformShim for usockets_shim_linux::LinuxShim {
    const NAME: &'static str = "epoll";

    fn create() -> io::Result<Self> {
        Self::new().map_err(os_error)
    }
}

/// io_uring that is missing, disabled or too old says so in the message (its raw code alone,
/// e.g. `ENOSYS` or `EPERM`, would not).
#[cfg(target_os = "linux")]
impl PlatformShim for usockets_shim_uring::UringShim {
    const NAME: &'static str = "io_uring";

    fn create() -> io::Result<Self> {
        Self::new().map_err(|e| match e.kind() {
            usockets_core::ErrorKind::Unsupported => io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "io_uring is not available here (missing, disabled or a kernel before 6.0): {}",
                    os_error(e)
                ),
            ),
            _ => os_error(e),
        })
    }
}

on_kqueue_systems! {
    impl PlatformShim for usockets_shim_bsd::BsdShim {
        const NAME: &'static str = "kqueue";

        fn create() -> io::Result<Self> {
            Self::new().map_err(os_error)
        }
    }
}

#[cfg(windows)]
impl PlatformShim for usockets_shim_windows::WindowsShim {
    const NAME: &'static str = "IOCP";

    fn create() -> io::Result<Self> {
        Self::new().map_err(os_error)
    }
}

/// A Linux shim chosen at run time, e.g. from a `--shim` option: `"epoll"` (the default,
/// [`DefaultShim`](crate::DefaultShim)) or `"uring"` ([`uring::UringShim`](crate::uring::UringShim)).
/// Match on it once, at startup, and call code generic over [`PlatformShim`] with each type:
///
/// ```no_run
/// use usockets::{AppLoop, LoopCallbacks, PlatformShim, Settings, ShimChoice};
///
/// fn serve<Sh: PlatformShim>() -> Result<(), Box<dyn std::error::Error>> {
///     let mut l: AppLoop<(), (), (), (), (), Sh> =
///         usockets::new_loop_on((), LoopCallbacks::default(), Settings::default())?;
///     // ... contexts, listen sockets ...
///     l.run()?;
///     Ok(())
/// }
///
/// let choice: ShimChoice = std::env::var("SHIM").as_deref().unwrap_or("epoll").parse()?;
/// match choice {
///     ShimChoice::Epoll => serve::<usockets::DefaultShim>()?,
///     ShimChoice::Uring => serve::<usockets::uring::UringShim>()?,
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A program that asked for io_uring should say so and stop when it is not available rather
/// than run on epoll unnoticed: [`PlatformShim::create`] fails with
/// [`io::ErrorKind::Unsupported`] there.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ShimChoice {
    /// Level-triggered epoll (`usockets-shim-linux`): the default.
    #[default]
    Epoll,
    /// io_uring (`usockets-shim-uring`): Linux 6.0 or later.
    Uring,
}

#[cfg(target_os = "linux")]
impl ShimChoice {
    /// The name it parses from: `"epoll"` or `"uring"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShimChoice::Epoll => "epoll",
            ShimChoice::Uring => "uring",
        }
    }
}

#[cfg(target_os = "linux")]
impl core::fmt::Display for ShimChoice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(target_os = "linux")]
impl core::str::FromStr for ShimChoice {
    type Err = UnknownShim;

    /// `"epoll"` or `"uring"` (also `"io_uring"`), in any case.
    fn from_str(s: &str) -> Result<ShimChoice, UnknownShim> {
        match s.to_ascii_lowercase().as_str() {
            "epoll" => Ok(ShimChoice::Epoll),
            "uring" | "io_uring" => Ok(ShimChoice::Uring),
            _ => Err(UnknownShim(s.to_owned())),
        }
    }
}

/// A name that is not a shim [`ShimChoice`] knows (it holds the name).
#[cfg(target_os = "linux")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownShim(pub String);

#[cfg(target_os = "linux")]
impl core::fmt::Display for UnknownShim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown shim {:?} (epoll or uring)", self.0)
    }
}

#[cfg(target_os = "linux")]
impl std::error::Error for UnknownShim {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::ShimChoice;

    #[test]
    fn shim_choice_parses_its_names_and_refuses_others() {
        assert_eq!("epoll".parse(), Ok(ShimChoice::Epoll));
        assert_eq!("uring".parse(), Ok(ShimChoice::Uring));
        assert_eq!("IO_URING".parse(), Ok(ShimChoice::Uring));
        assert_eq!(ShimChoice::default(), ShimChoice::Epoll);
        let e = "kqueue".parse::<ShimChoice>().unwrap_err();
        assert_eq!(e.to_string(), "unknown shim \"kqueue\" (epoll or uring)");
        for c in [ShimChoice::Epoll, ShimChoice::Uring] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }
}
