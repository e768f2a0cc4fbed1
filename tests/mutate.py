#!/usr/bin/env python3
"""Runs xtenant's commands on mutated copies of samples/ and keeps what breaks it.

    tests/mutate.py BIN [--runs 3000] [--seed 1] [--keep DIR]

Each run mutates one sample export (bytes flipped, JSON and CSV tokens
inserted, spans deleted, repeated or copied from elsewhere, the file cut
short, sometimes gzipped and cut again) and, half the time, a sample policy
beside it, then runs one of the commands below on them. A run that panics
(exit 101), is killed by a signal, says "internal error" or takes longer
than 30 s is a finding: its inputs and command are copied to a folder of
their own under --keep. Exit 1 when there was any.

Not part of `cargo test` (random, minutes long): run it by hand after
changing a reader, the framer, a renderer or the policy loader. The seed
makes a run repeatable.
"""
import argparse, gzip, os, random, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")
TOKENS = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\n", b"\r\n", b"\x00", b"\xff",
          b"\xef\xbb\xbf", b"null", b"true", b"-1", b"1e999", b"\\u0000", b"\\ud800", b'"value":',
          b'"records":[', b"\t", b'""', b"\xe2\x80\xae", b"\x1b[31m", b"AllUsers",
          b"9999-12-31T23:59:59Z", b"0000-00-00", b"NaN"]


def read(path):
    data = open(path, "rb").read()
    return gzip.decompress(data) if path.endswith(".gz") else data


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(7)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[i:i] = rng.choice(TOKENS)
        elif op == 2:
            del b[i:i + rng.randint(1, 64)]
        elif op == 3:
            del b[i:]
        elif op == 4 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 4096)]
        elif op == 5:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 6 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + 1] * rng.randint(1, 200)
    return bytes(b)


def commands(xt, logs, policy, other_policy, work):
    return [
        [xt, "-q", "activity", "--skip-invalid", logs],
        [xt, "-q", "activity", logs],
        [xt, "-q", "activity", "--skip-invalid", "--format", "json", logs],
        [xt, "-q", "activity", "--skip-invalid", "--groups-in-memory", "1", "--format", "table", logs],
        [xt, "-q", "replay", "--skip-invalid", "--proposed", policy, logs],
        [xt, "-q", "replay", "--skip-invalid", "--format", "markdown", "--proposed", policy, logs],
        [xt, "-q", "replay", "--skip-invalid", "--format", "cef", "--proposed", policy, "--current", other_policy, logs],
        [xt, "-q", "replay", "--skip-invalid", "--groups-in-memory", "1", "--format", "json", "--proposed", policy, logs],
        [xt, "-q", "propose", "--skip-invalid", logs],
        [xt, "-q", "timeline", "--skip-invalid", logs],
        [xt, "-q", "report", "--skip-invalid", "--format", "markdown", "-o", os.path.join(work, "report.md"), logs],
        [xt, "-q", "store", "add", "--skip-invalid", "--store", os.path.join(work, "store"), logs],
        [xt, "-q", "policy", "check", policy],
        [xt, "-q", "policy", "show", policy],
        [xt, "-q", "policy", "diff", other_policy, policy],
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin", help="the xtenant binary to run")
    ap.add_argument("--runs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", default="mutate-findings", help="where the inputs of findings are copied")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    exports = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(SAMPLES, "signins")) for f in files]
    exports.append(os.path.join(SAMPLES, "audit", "directoryAudits.json"))
    corpus = [(os.path.basename(p).removesuffix(".gz"), read(p)) for p in sorted(exports)]
    policies = [os.path.join(SAMPLES, "policies", p) for p in ("current.json", "proposed.json")]
    findings = 0
    with tempfile.TemporaryDirectory() as work:
        for n in range(a.runs):
            name, data = rng.choice(corpus)
            logs = os.path.join(work, name)
            mutated = mutate(rng, data)
            if rng.random() < 0.15:
                mutated = gzip.compress(mutated)
                if rng.random() < 0.3:
                    mutated = mutated[:rng.randrange(1, 200)]
                logs += ".gz"
            open(logs, "wb").write(mutated)
            other = rng.choice(policies)
            policy = os.path.join(work, "policy.json")
            text = read(other)
            open(policy, "wb").write(mutate(rng, text) if rng.random() < 0.5 else text)
            cmd = rng.choice(commands(a.bin, logs, policy, other, work))
            try:
                r = subprocess.run(cmd, capture_output=True, timeout=30)
                err = r.stderr.decode("utf-8", "replace")
                broke = r.returncode < 0 or r.returncode == 101 or "panicked" in err or "internal error" in err
                what = f"exit {r.returncode}"
            except subprocess.TimeoutExpired:
                broke, err, what = True, "", "no answer in 30 s"
            if os.path.exists(logs):
                os.remove(logs)
            if broke:
                findings += 1
                keep = os.path.join(a.keep, f"seed{a.seed}-run{n}")
                os.makedirs(keep, exist_ok=True)
                open(os.path.join(keep, os.path.basename(logs)), "wb").write(mutated)
                shutil.copy(policy, keep)
                with open(os.path.join(keep, "command"), "w") as f:
                    f.write(" ".join(cmd) + f"\n{what}\n{err[-3000:]}")
                print(f"run {n}: {what}: {' '.join(cmd[2:4])}; inputs in {keep}", flush=True)
    print(f"{a.runs} runs, {findings} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
