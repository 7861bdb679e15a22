//! What the per-step bench programs share: their command line.

/// `NAME FILE [REPEAT] [WIDTHS]`: the file's bytes, how many times to time
/// each step (default 3), the widths (comma-separated, default the
/// pipeline's 1920,640,320).
pub struct Args {
    pub input: Vec<u8>,
    pub repeat: usize,
    pub widths: Vec<u32>,
}

/// Reads the command line; exits with the usage line when FILE is missing
/// or unreadable.
pub fn args(name: &str) -> Args {
    let all: Vec<String> = std::env::args().collect();
    let Some(input) = all.get(1).and_then(|p| std::fs::read(p).ok()) else {
        eprintln!("usage: {name} FILE [REPEAT] [WIDTHS]");
        std::process::exit(2);
    };
    let repeat = all.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    let widths = all
        .get(3)
        .map(|w| w.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![1920, 640, 320]);
    Args {
        input,
        repeat,
        widths,
    }
}
