//! Cost of verifying one request, per scheme, at 1 KiB and 64 KiB bodies.
//!
//! `cargo bench -p hookhost --bench verify`. The bar (issue 3): a 64 KiB body
//! verifies in under 50 µs. Each request is signed first with the scheme's own
//! signing code, so what is measured is the accepting path (the expensive one:
//! a refusal can stop early).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookhost::secret::SecretResolver;
use hookhost::verify::{self, Input, RawVerify};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: i64 = 1_700_000_000;

fn scheme(name: &str) -> RawVerify {
    let extra = match name {
        "hmac" => "header = \"X-Signature\"\n",
        _ => "",
    };
    toml::from_str(&format!(
        "scheme = \"{name}\"\nsecret = \"{SECRET}\"\n{extra}"
    ))
    .unwrap()
}

fn bench_schemes(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for &name in verify::scheme_names() {
        let scheme = verify::build(&scheme(name), &SecretResolver::new(Path::new("."))).unwrap();
        for size in [1024usize, 64 * 1024] {
            // Twilio signs form parameters; everything else signs raw bytes.
            let body: Vec<u8> = if name == "twilio" {
                let mut form = b"Body=".to_vec();
                form.resize(size, b'a');
                form
            } else {
                (0..size).map(|i| (i % 251) as u8).collect()
            };
            let uri: http::Uri = "https://hooks.example.com/hooks/bench".parse().unwrap();
            let mut headers = scheme.sign(&body, &uri, NOW).unwrap();
            headers.insert("host", "hooks.example.com".parse().unwrap());
            let path: http::Uri = "/hooks/bench".parse().unwrap();
            let input = Input::post(&headers, &body, &path, NOW);
            scheme.verify(&input).expect("a signed request verifies");
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &input, |b, input| {
                b.iter(|| scheme.verify(black_box(input)).unwrap());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_schemes);
criterion_main!(benches);
