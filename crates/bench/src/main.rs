//! `ensemble-bench`: see the library docs; `--help` lists the flags.

use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ensemble_bench::{run, Options};

fn main() -> std::process::ExitCode {
    let o = Options::parse();
    match run(&o) {
        Ok(rep) => {
            print!("{}", rep.to_table());
            if o.json {
                println!("{}", rep.to_json());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ensemble-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
