//! Running the other programs the bench needs: pinned to a CPU (the servers,
//! wrk) or just for what they print (rustup, uname, `wrk -v`).

use std::path::Path;
use std::process::Command;

/// `taskset -c CPU binary` when pinning, else just `binary`.
pub fn pinned(cpu: Option<usize>, binary: &Path) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

/// What `program ARGS` prints, stdout then stderr; empty if it cannot run.
pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}
