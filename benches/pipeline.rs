//! Criterion benchmarks: each reader (records and bytes per second),
//! grouping, and replay. Run with `cargo bench --bench pipeline`; the data
//! is generated in memory by the seeded scenario, so runs are comparable.

use std::io::Write;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use xtenant::analysis::activity::Activity;
use xtenant::analysis::replay::{replay, Inputs};
use xtenant::ingest::{self, Input, Options};
use xtenant::model::GroupBy;
use xtenant::policy::load::load;
use xtenant::synth::{Scenario, SynthFormat, Writer};

const RECORDS: u64 = 4000;

fn generate(format: SynthFormat, records: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = Scenario::new(7, 200);
    let mut w = Writer::new(format, &mut out).unwrap();
    for _ in 0..records {
        w.write(&s.sign_in()).unwrap();
    }
    w.finish().unwrap();
    out
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn read(path: &std::path::Path) -> u64 {
    let mut n = 0;
    ingest::read_signins(&[Input::File(path.to_path_buf())], &Options::default(), None, |_| n += 1).unwrap();
    n
}

fn readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(10);
    for format in [
        SynthFormat::GraphNdjson,
        SynthFormat::GraphPage,
        SynthFormat::Diagnostic,
        SynthFormat::LaCsv,
        SynthFormat::PortalCsv,
    ] {
        let data = generate(format, RECORDS);
        let file = write_temp(&data);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::new("bytes", format!("{format:?}")), &file, |b, f| {
            b.iter(|| assert_eq!(read(f.path()), RECORDS))
        });
        g.throughput(Throughput::Elements(RECORDS));
        g.bench_with_input(BenchmarkId::new("records", format!("{format:?}")), &file, |b, f| {
            b.iter(|| read(f.path()))
        });
    }
    g.finish();
}

/// Gzipped NDJSON against inflating alone (flate2 with zlib-rs, as the
/// reader uses it): the reader should run close to the second. Throughput
/// is in uncompressed bytes for both.
fn gzip(c: &mut Criterion) {
    let data = generate(SynthFormat::GraphNdjson, RECORDS);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(&data).unwrap();
    let gz = enc.finish().unwrap();
    let file = write_temp(&gz);
    let mut g = c.benchmark_group("gzip");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("read_graph_ndjson_gz", |b| b.iter(|| assert_eq!(read(file.path()), RECORDS)));
    g.bench_function("inflate_alone", |b| {
        b.iter(|| {
            let mut d = flate2::read::MultiGzDecoder::new(gz.as_slice());
            std::io::copy(&mut d, &mut std::io::sink()).unwrap()
        })
    });
    g.finish();
}

fn grouping_and_replay(c: &mut Criterion) {
    let data = generate(SynthFormat::GraphNdjson, RECORDS);
    let file = write_temp(&data);
    let mut signins = Vec::new();
    ingest::read_signins(&[Input::File(file.path().to_path_buf())], &Options::default(), None, |s| {
        signins.push(s)
    })
    .unwrap();
    let mut g = c.benchmark_group("aggregate");
    g.throughput(Throughput::Elements(signins.len() as u64));
    g.bench_function("group_by_user", |b| {
        b.iter(|| {
            let mut a = Activity::new();
            for s in signins.iter().cloned() {
                a.add(s);
            }
            a.finish(None, GroupBy::User).unwrap().rows.len()
        })
    });
    let mut a = Activity::new();
    signins.iter().cloned().for_each(|s| a.add(s));
    let rows = a.finish(None, GroupBy::User).unwrap().rows;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (current, _) = load(&root.join("samples/policies/current.json")).unwrap();
    let (proposed, _) = load(&root.join("samples/policies/proposed.json")).unwrap();
    let ca = xtenant::policy::conditional_access::CaPolicies::default();
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("replay_rows", |b| {
        b.iter(|| {
            let inputs = Inputs {
                current: Some(&current),
                proposed: &proposed,
                groups: None,
                identities: None,
                history: None,
                apps: xtenant::policy::apps::AppCatalog::built_in(),
                ca: &ca,
            };
            replay(rows.clone(), &inputs).len()
        })
    });
    g.finish();
}

criterion_group!(benches, readers, gzip, grouping_and_replay);
criterion_main!(benches);
