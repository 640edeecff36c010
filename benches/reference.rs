//! The limit for tend's job, for the peer benchmark (benches/peers.sh): read
//! every process's command line and executable link from /proc and look
//! for each literal given on the command line, std only. Exits 1 and says
//! how many are missing when one is not found. Not part of tend.
//!
//!     rustc -O -o reference benches/reference.rs && ./reference /usr/sbin/sshd

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let mut found = vec![false; wanted.len()];
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let _exe = std::fs::read_link(format!("/proc/{pid}/exe"));
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        for (i, w) in wanted.iter().enumerate() {
            found[i] |= text.contains(w.as_str());
        }
    }
    let missing = found.iter().filter(|f| !**f).count();
    if missing > 0 {
        println!("{missing} not running");
        std::process::exit(1);
    }
}
