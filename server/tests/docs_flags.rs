//! Every `bank-server` flag that `--help` shows is documented in
//! docs/operations.md: a new flag without a line there fails this test.

use clap::CommandFactory;

/// The long flags `bank-server --help` lists, `--help` and `--version` aside.
fn help_flags() -> Vec<String> {
    let command = bank_server::cli::Args::command();
    let shown = command.get_arguments().filter(|a| !a.is_hide_set());
    let longs = shown.filter_map(|a| a.get_long());
    longs
        .filter(|l| !matches!(*l, "help" | "version"))
        .map(|l| format!("--{l}"))
        .collect()
}

#[test]
fn every_server_flag_is_in_docs_operations() {
    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    let docs = std::fs::read_to_string(docs_path).expect("docs/operations.md");
    let flags = help_flags();
    assert!(flags.len() > 20, "{flags:?}");
    // Written as `--flag` in backticks (a table row or the text), whole flag
    // only: `--max-waiters` is not documented by `--max-waiters-per-account`.
    let missing: Vec<_> = flags
        .iter()
        .filter(|f| !docs.contains(&format!("`{f}`")) && !docs.contains(&format!("`{f} ")))
        .collect();
    assert!(missing.is_empty(), "missing from docs/operations.md: {missing:?}");
}
