//! `ddlens doctor`: is everything found and working?

use std::process::ExitCode;

use ddlens::runtime::RuntimeConfig;

/// Prints the report; fails when it found a problem.
pub(crate) fn run(config: &RuntimeConfig, json: bool) -> ExitCode {
    let report = ddlens::doctor::run(config);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", report.render());
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
