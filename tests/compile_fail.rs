//! What safe code must not be able to write, checked by the compiler (trybuild): make a
//! descriptor from an integer, close one through the loop's shim or through another shim, or
//! keep a borrowed one past its owner's close. Each case has its expected compiler message in
//! a committed `.stderr` file next to it; a positive control that does the same jobs the
//! allowed way must compile and run.
//!
//! The messages are rustc's: after a toolchain update, review the diff and regenerate with
//! `TRYBUILD=overwrite cargo test --test compile_fail`.

#[test]
fn io_safety_is_enforced_by_the_types() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
