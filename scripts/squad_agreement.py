"""How often wgformer's SQuAD predictions ({id: answer}, from `wgformer eval squad
--predictions`) equal transformers' answers (squad-visible.hf.jsonl, plain or gzipped), per file.

    python3 scripts/squad_agreement.py squad-visible.hf.jsonl.gz pred-f32.json pred-f16.json
"""
import gzip
import json
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path = sys.argv[1]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        hf = {}
        for line in f:
            if line.strip():
                r = json.loads(line)
                hf[r["id"]] = r["answer"]
    for pred_path in sys.argv[2:]:
        with open(pred_path, encoding="utf-8") as f:
            pred = json.load(f)
        ids = [i for i in pred if i in hf]
        same = sum(pred[i] == hf[i] for i in ids)
        unknown = len(pred) - len(ids)
        share = 100.0 * same / len(ids) if ids else 0.0
        print(f"{pred_path}: {same} of {len(ids)} answers equal transformers' ({share:.2f} %)"
              + (f"; {unknown} ids not in the fixture" if unknown else ""))


if __name__ == "__main__":
    main()
