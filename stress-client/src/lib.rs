//! stress-client: a many-connection gRPC load tool for `bank.v1` whose latency
//! numbers are honest (HdrHistogram, coordinated omission corrected) and whose
//! final verdict says whether the server kept every account correct.

pub mod after_run;
pub mod bound;
pub mod check;
pub mod check_target;
pub mod chunked;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod connections;
pub mod drive;
pub mod errors;
pub mod exit;
pub mod fanout;
pub mod final_reads;
pub mod h2fast;
pub mod histlog;
pub mod histogram;
pub mod history;
pub mod insecure;
pub mod outputs;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod request_id;
pub mod rpc;
pub mod run;
pub mod samples;
pub mod settle;
pub mod setup;
pub mod stage_tally;
pub mod stages;
pub mod target;
pub mod threshold;
pub mod timeline;
pub mod tls;
pub mod transport;
pub mod workload;
