//! The `traced` example as a process: its spans are printed by both subscribers, form one
//! trace, and the handler's `tracing` event comes back from the remote log with that trace.

use std::process::Command;

#[test]
fn traced_prints_one_trace_and_the_remote_log_record() {
    let domain = format!("t-traced-{}", std::process::id());
    let output = Command::new(env!("CARGO_BIN_EXE_traced"))
        .arg(&domain)
        .output()
        .expect("run the traced example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "traced failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = stdout
        .lines()
        .find_map(|line| line.strip_prefix("== the request's trace: "))
        .expect("the example names its trace")
        .to_owned();
    assert!(stdout.contains("== multiply(6, 7) = 42"), "{stdout}");
    assert!(
        stdout.contains("== divide(1, 0) = Err(DivisionByZero)"),
        "{stdout}"
    );
    // fmt's lines, and OpenTelemetry's exported spans of both kinds, in the request's trace.
    assert!(stdout.contains("fabric.client{"), "{stdout}");
    assert!(stdout.contains("fabric.server{"), "{stdout}");
    assert!(stdout.contains("Kind         : Client"), "{stdout}");
    assert!(stdout.contains("Kind         : Server"), "{stdout}");
    assert!(
        stdout.contains("Status       : Error"),
        "the refused division is an error: {stdout}"
    );
    let trace_ids: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("TraceId      : "))
        .collect();
    assert_eq!(
        trace_ids.len(),
        5,
        "request, 2 clients, 2 servers: {stdout}"
    );
    assert!(trace_ids.iter().all(|id| *id == trace), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "== remote log: INFO multiplying x=6 y=7 trace_id={trace} (trace {trace}"
        )),
        "{stdout}"
    );
}
