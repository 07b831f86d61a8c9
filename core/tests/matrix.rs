//! The behaviour matrix (`docs/behaviour-matrix.md`) must stay honest: every C function of the
//! contract and every numbered behaviour has a row, and every test a row names exists.

use std::path::{Path, PathBuf};

/// Every function of the current `libusockets.h` contract (83).
const C_FUNCTIONS: &[&str] = &[
    "us_create_loop",
    "us_loop_free",
    "us_loop_ext",
    "us_loop_run",
    "us_wakeup_loop",
    "us_loop_integrate",
    "us_loop_iteration_number",
    "us_create_socket_context",
    "us_create_child_socket_context",
    "us_socket_context_free",
    "us_socket_context_ext",
    "us_socket_context_loop",
    "us_socket_context_timestamp",
    "us_socket_context_close",
    "us_socket_context_on_pre_open",
    "us_socket_context_on_open",
    "us_socket_context_on_close",
    "us_socket_context_on_data",
    "us_socket_context_on_writable",
    "us_socket_context_on_timeout",
    "us_socket_context_on_long_timeout",
    "us_socket_context_on_connect_error",
    "us_socket_context_on_end",
    "us_socket_context_listen",
    "us_socket_context_listen_unix",
    "us_listen_socket_close",
    "us_adopt_accepted_socket",
    "us_socket_context_connect",
    "us_socket_context_connect_unix",
    "us_socket_context_adopt_socket",
    "us_socket_context",
    "us_socket_ext",
    "us_socket_write",
    "us_socket_write2",
    "us_socket_timeout",
    "us_socket_long_timeout",
    "us_socket_flush",
    "us_socket_shutdown",
    "us_socket_shutdown_read",
    "us_socket_is_shut_down",
    "us_socket_is_closed",
    "us_socket_is_established",
    "us_socket_close_connecting",
    "us_socket_close",
    "us_socket_local_port",
    "us_socket_remote_port",
    "us_socket_remote_address",
    "us_socket_send_buffer",
    "us_create_poll",
    "us_poll_free",
    "us_poll_init",
    "us_poll_start",
    "us_poll_change",
    "us_poll_stop",
    "us_poll_events",
    "us_poll_ext",
    "us_poll_fd",
    "us_poll_resize",
    "us_create_timer",
    "us_timer_ext",
    "us_timer_close",
    "us_timer_set",
    "us_timer_loop",
    "us_socket_get_native_handle",
    "us_socket_context_get_native_handle",
    "us_socket_context_add_server_name",
    "us_socket_context_remove_server_name",
    "us_socket_context_on_server_name",
    "us_socket_server_name_userdata",
    "us_socket_context_find_server_name_userdata",
    "us_create_udp_packet_buffer",
    "us_create_udp_socket",
    "us_udp_socket_receive",
    "us_udp_socket_send",
    "us_udp_buffer_set_packet_payload",
    "us_udp_packet_buffer_payload",
    "us_udp_packet_buffer_payload_length",
    "us_udp_packet_buffer_peer",
    "us_udp_packet_buffer_local_ip",
    "us_udp_packet_buffer_ecn",
    "us_udp_socket_bound_port",
    "us_udp_socket_user",
    "us_udp_socket_bind",
];

/// Row ids of the contract's numbered behaviours (B), our decisions (D) and the points where we
/// do better than upstream (X).
fn behaviour_ids() -> Vec<String> {
    let mut ids = Vec::new();
    ids.extend((1..=13).map(|n| format!("B{n}")));
    ids.extend((1..=13).map(|n| format!("D{n}")));
    ids.extend((1..=10).map(|n| format!("X{n}")));
    ids
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(first cell, last cell)` of every table row after the header rows.
fn rows(md: &str) -> Vec<(String, String)> {
    md.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| Item"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            Some((cells.first()?.to_string(), cells.last()?.to_string()))
        })
        .collect()
}

/// Test references in a cell: `path/to/file.rs::test_name` (or `.c::`, `.cpp::` for the C ABI's
/// tests) in backticks.
fn test_refs(cell: &str) -> Vec<(String, String)> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|r| {
            let (file, test) = r.split_once("::")?;
            [".rs", ".c", ".cpp"]
                .iter()
                .any(|ext| file.ends_with(ext))
                .then(|| (file.to_string(), test.to_string()))
        })
        .collect()
}

/// A CI stage a cell names as proof: ``.ci/run` stage `NAME``.
fn ci_stage(cell: &str) -> Option<String> {
    let rest = cell.split("`.ci/run` stage `").nth(1)?;
    rest.split('`').next().map(str::to_string)
}

/// Everything wrong with matrix `md`: rows naming a test or CI stage that does not exist (files
/// are read below `root`), rows that prove nothing, and contract items without a row.
fn problems(md: &str, root: &Path) -> Vec<String> {
    let rows = rows(md);
    let mut problems = Vec::new();
    for (item, tests) in &rows {
        let refs = test_refs(tests);
        let stage = ci_stage(tests);
        if let Some(stage) = &stage {
            let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap_or_default();
            if !ci.contains(&format!("stage {stage} ")) {
                problems.push(format!("{item}: .ci/run has no stage {stage}"));
            }
        }
        if refs.is_empty() && stage.is_none() && !tests.to_lowercase().starts_with("pending") {
            problems.push(format!("{item}: names no test and is not pending"));
        }
        for (file, test) in refs {
            match std::fs::read_to_string(root.join(&file)) {
                Ok(src) => {
                    // Rust tests are `fn name(`, conformance checks `fn name<S: …>(`; C and
                    // C++ test functions are `name(` after their return type.
                    let c_like = file.ends_with(".c") || file.ends_with(".cpp");
                    let found = if c_like {
                        src.contains(&format!(" {test}("))
                    } else {
                        src.contains(&format!("fn {test}(")) || src.contains(&format!("fn {test}<"))
                    };
                    if !found {
                        problems.push(format!("{item}: {file} has no fn {test}"));
                    }
                }
                Err(_) => problems.push(format!("{item}: no file {file}")),
            }
        }
    }
    for f in C_FUNCTIONS {
        if !rows.iter().any(|(item, _)| item.trim_matches('`') == *f) {
            problems.push(format!("no row for {f}"));
        }
    }
    for id in behaviour_ids() {
        let prefix = format!("{id} ");
        if !rows
            .iter()
            .any(|(item, _)| item.starts_with(&prefix) || item.starts_with(&format!("{id}.")))
        {
            problems.push(format!("no row for behaviour {id}"));
        }
    }
    problems
}

#[test]
fn every_row_names_existing_tests_and_every_item_has_a_row() {
    let path = root().join("docs/behaviour-matrix.md");
    let md = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows = rows(&md).len();
    assert!(rows > 100, "matrix looks truncated: {rows} rows");
    let problems = problems(&md, &root());
    assert!(
        problems.is_empty(),
        "behaviour matrix problems:\n{}",
        problems.join("\n")
    );
}

/// The real check (`problems`) on a small matrix: it names a test that exists, one that does
/// not, a CI stage that does not exist and a row that proves nothing, and lacks every other
/// row. Exactly those faults must be reported, and the existing test must not be.
#[test]
fn the_check_itself_rejects_a_missing_test() {
    let md = "| Item | Test |\n|---|---|\n\
        | `us_loop_free` | `core/tests/matrix.rs::no_such_test_here` |\n\
        | `us_loop_run` | `core/tests/matrix.rs::the_check_itself_rejects_a_missing_test` |\n\
        | B1 something | `.ci/run` stage `no-such-stage` |\n\
        | B2 something | a sentence, no test |\n";
    let found = problems(md, &root());
    for expected in [
        "`us_loop_free`: core/tests/matrix.rs has no fn no_such_test_here",
        "B1 something: .ci/run has no stage no-such-stage",
        "B2 something: names no test and is not pending",
        "no row for us_create_loop",
        "no row for behaviour X10",
    ] {
        assert!(
            found.iter().any(|p| p == expected),
            "not reported: {expected:?} in {found:?}"
        );
    }
    assert!(
        !found.iter().any(|p| p.contains("the_check_itself")
            || p == "no row for us_loop_free"
            || p == "no row for us_loop_run"),
        "an existing test or a present row was reported: {found:?}"
    );
}
