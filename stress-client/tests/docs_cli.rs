//! Docs complete by test: every flag `stress-client --help` shows, of the
//! main command and of each subcommand, is spelled out (as `--flag`) in
//! docs/cli.md, in the first column of a flag table in that command's part
//! of it: a subcommand's flags in its section, the run's anywhere but the
//! `conformance` section (which has flags of its own with the run's names).
//! A mention in prose does not count. A new flag without its row in the docs
//! fails here.

use clap::CommandFactory;
use stress_client::cli::Cli;

/// The visible long flags of `command` and its subcommands, as
/// (where, `--flag`), clap's own `--help` and `--version` aside.
fn flags(command: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        match arg.get_long() {
            Some("help" | "version") | None => {}
            Some(long) => out.push((path.to_owned(), format!("--{long}"))),
        }
    }
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        flags(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

/// Each subcommand's section of docs/cli.md: a text its `###` heading holds.
const SECTIONS: [(&str, &str); 3] = [
    ("stress-client compare", "Comparing two runs"),
    ("stress-client conformance", "`conformance`"),
    ("stress-client merge", "Load shape and workload"),
];

/// The `###` section whose heading contains `heading`, up to the next heading.
fn section(docs: &str, heading: &str) -> (usize, usize) {
    let start = docs
        .match_indices("\n### ")
        .map(|(at, _)| at + 1)
        .find(|at| docs[*at..].lines().next().is_some_and(|l| l.contains(heading)))
        .unwrap_or_else(|| panic!("no section {heading:?} in docs/cli.md"));
    let end = docs[start + 4..]
        .find("\n#")
        .map_or(docs.len(), |n| start + 4 + n);
    (start, end)
}

/// The first cells of the table rows in `text`, one a line.
fn first_cells(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix('|'))
        .filter_map(|row| row.split('|').next())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `flag` appears whole in `text`: `--tls-ca` is not `--tls-ca-file`.
fn mentions(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        let next = text[at + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn every_flag_in_help_is_in_docs_cli_md() {
    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md");
    let docs = std::fs::read_to_string(docs_path).expect("docs/cli.md");
    let mut all = Vec::new();
    flags(&Cli::command(), "stress-client", &mut all);
    assert!(all.len() > 30, "the walk found the flags: {all:?}");
    let (cs, ce) = section(&docs, "`conformance`");
    let run_docs = format!("{}{}", &docs[..cs], &docs[ce..]);
    let missing: Vec<String> = all
        .iter()
        .filter(|(path, flag)| {
            let text = match SECTIONS.iter().find(|(p, _)| p == path) {
                Some((_, heading)) => {
                    let (start, end) = section(&docs, heading);
                    &docs[start..end]
                }
                None => run_docs.as_str(),
            };
            !mentions(&first_cells(text), flag)
        })
        .map(|(path, flag)| format!("{path} {flag}"))
        .collect();
    assert!(missing.is_empty(), "flags missing from docs/cli.md: {missing:#?}");
}
