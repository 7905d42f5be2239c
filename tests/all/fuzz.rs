//! The fuzz targets' short run: every committed corpus file
//! (`fuzz/corpus/TARGET`), then seeded random mutations of them, through each
//! target body in `hookhost::fuzz`, in the normal test build. The long,
//! coverage-guided run is `make fuzz` (docs/fuzzing.md).
//!
//! `HOOKHOST_FUZZ_MUTATIONS` sets the mutations per target (default 3000),
//! `HOOKHOST_FUZZ_SECONDS` a time per target instead (a longer random run
//! without the instrumented build), `HOOKHOST_FUZZ_SEED` the seed (default:
//! from the clock, printed), so a failure can be replayed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_MUTATIONS: usize = 3000;
/// Mutants stay small: the targets' interesting paths are in short inputs.
const MAX_LEN: usize = 4096;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// xorshift64*: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that sit on the parsers' edges.
const INTERESTING: &[u8] = b"\0\n\r\t %+&=,:;\"'\\/?#[]{}-_.0179afzAFZ\x7f\x80\xc3\xff";

/// One libFuzzer-like mutation of `input` (a splice takes from `other`).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                out.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at..end);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let copy = out[at..end].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, copy);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                let at = rng.below(len + 1);
                out.splice(at..at, other[from..end].iter().copied());
            }
            6 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                let digits = rng.next().to_string();
                out.splice(at..at, digits.bytes());
            }
        }
    }
    out.truncate(MAX_LEN);
    out
}

/// Runs `input` through `target`, turning a panic into a message that
/// carries the input (to be added to the corpus as a regression).
fn run(name: &str, target: fn(&[u8]), input: &[u8], origin: &str) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        panic!(
            "fuzz target `{name}` panicked on {origin}; input (save it as \
             fuzz/corpus/{name}/crash-NAME): {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn every_corpus_file_and_seeded_mutations_pass_every_fuzz_target() {
    let mutations = std::env::var("HOOKHOST_FUZZ_MUTATIONS")
        .ok()
        .map(|v| v.parse().expect("HOOKHOST_FUZZ_MUTATIONS: a number"))
        .unwrap_or(DEFAULT_MUTATIONS);
    let seconds: Option<u64> = std::env::var("HOOKHOST_FUZZ_SECONDS")
        .ok()
        .map(|v| v.parse().expect("HOOKHOST_FUZZ_SECONDS: a number"));
    let seed = std::env::var("HOOKHOST_FUZZ_SEED")
        .ok()
        .map(|v| v.parse().expect("HOOKHOST_FUZZ_SEED: a number"))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("fuzz replay: seed {seed} (HOOKHOST_FUZZ_SEED={seed} replays it)");
    for (name, target) in hookhost::fuzz::TARGETS {
        let started = Instant::now();
        let dir = corpus_dir(name);
        let mut corpus: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect();
        corpus.sort();
        assert!(
            corpus.len() >= 4,
            "{}: the corpus needs seeds (python3 fuzz/seeds.py)",
            dir.display()
        );
        for (path, input) in &corpus {
            run(name, *target, input, path);
        }
        let mut rng = Rng(seed ^ (name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let budget = seconds.map(std::time::Duration::from_secs);
        let mut i = 0;
        while match budget {
            Some(budget) => started.elapsed() < budget,
            None => i < mutations,
        } {
            i += 1;
            let (_, input) = &corpus[rng.below(corpus.len())];
            let (_, other) = &corpus[rng.below(corpus.len())];
            let mutant = mutate(&mut rng, input, other);
            run(
                name,
                *target,
                &mutant,
                &format!("mutation {i} of seed {seed}"),
            );
        }
        eprintln!(
            "fuzz replay: {name}: {} corpus files + {i} mutations in {:?}",
            corpus.len(),
            started.elapsed()
        );
    }
}

/// The `verify` seeds reach the end of each scheme: every `seed-*` request
/// is accepted (those named `refused` are refused), and every scheme the
/// host knows has one. A new scheme needs a seed in fuzz/seeds.py.
#[test]
fn every_scheme_has_a_verify_seed_that_it_accepts() {
    let dir = corpus_dir("verify");
    let mut accepted = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        let outcome = hookhost::fuzz::verify_outcome(&input)
            .unwrap_or_else(|| panic!("{name}: not a [verify] table and a request"));
        if name.contains("refused") {
            assert!(outcome.is_err(), "{name}: accepted");
            continue;
        }
        assert_eq!(outcome, Ok(()), "{name}");
        let table = String::from_utf8_lossy(&input);
        let scheme = table
            .lines()
            .find_map(|line| line.strip_prefix("scheme = "))
            .unwrap()
            .trim_matches('"')
            .to_owned();
        accepted.insert(scheme);
    }
    for scheme in hookhost::verify::scheme_names() {
        assert!(
            accepted.contains(*scheme),
            "no accepted seed for scheme `{scheme}` in {}: add one to fuzz/seeds.py",
            dir.display()
        );
    }
}
