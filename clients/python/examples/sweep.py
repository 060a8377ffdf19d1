"""A small learning-rate sweep, notebook style: each `# %%` cell runs on its own in Jupyter or VS Code.

Starts one run per learning rate, waits for all of them, and prints a table of results read from
the tasks' outputs. Needs an Odin server and a token that may push and run (an operator's):

    ODIN_SERVER=localhost:50051 ODIN_TOKEN=… python3 examples/sweep.py

The pipeline below declares a parameter `lr`; it is pushed once (as `sweeps/<sweep>`) and each run
passes its own `params={"lr": lr}`. Labels record the sweep, so its runs can be listed together.
"""

# %%
from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from odin_client import Client, OdinError, Run, RunFailed

LEARNING_RATES = [0.3, 0.1, 0.03, 0.01]
SWEEP = f"lr-{uuid.uuid4().hex[:6]}"

# `train` reports a loss for its learning rate in $TASK_PATH/outputs.json (on Kubernetes: the
# termination message); `evaluate` receives it through ^train.outputs.loss and reports an accuracy.
# The "model" is a parabola with its best learning rate at 0.05, so the table has a winner.
PIPELINE = """\
name: sweep
parameters:
  lr: {type: number, description: learning rate}
tasks:
- name: train
  image: busybox:1.36
  command: sh
  args:
  - -c
  - |
    loss=$$(awk 'BEGIN { lr = ${{ params.lr }}; printf "%.4f", 0.2 + (lr - 0.05) * (lr - 0.05) * 10 }')
    echo "train: lr=${{ params.lr }} loss=$$loss"
    echo "{\\"loss\\": $$loss}" > "${TASK_PATH}/outputs.json"
    if [ -w /dev/termination-log ]; then cp "${TASK_PATH}/outputs.json" /dev/termination-log; fi
- name: evaluate
  image: busybox:1.36
  command: sh
  args:
  - -c
  - |
    accuracy=$$(awk -v loss="$0" 'BEGIN { printf "%.3f", 1 - loss }')
    echo "evaluate: accuracy=$$accuracy"
    echo "{\\"accuracy\\": $$accuracy}" > "${TASK_PATH}/outputs.json"
    if [ -w /dev/termination-log ]; then cp "${TASK_PATH}/outputs.json" /dev/termination-log; fi
  - ^train.outputs.loss
"""

odin = Client()  # ODIN_SERVER and ODIN_TOKEN, as the odin CLI
print(f"sweep {SWEEP} on {odin.server}: learning rates {', '.join(map(str, LEARNING_RATES))}")

# %% Push the pipeline once, then start one run per learning rate.
path = f"sweeps/{SWEEP}"
with tempfile.TemporaryDirectory() as tmp:
    (Path(tmp) / "main.yml").write_text(PIPELINE)
    odin.push(tmp, f"sweep {SWEEP}", path=path)
runs: Dict[float, Run] = {}
for lr in LEARNING_RATES:
    runs[lr] = odin.run(path, params={"lr": lr}, labels={"sweep": SWEEP})
    print(f"  lr={lr:<5} {runs[lr].id}")

# %% Wait for every run (they run side by side on the server); a failed one is reported, not fatal.
errors: Dict[float, str] = {}
for lr, run in runs.items():
    try:
        run.wait(timeout=600)
    except RunFailed as e:
        errors[lr] = str(e).splitlines()[0]

# %% A table of results, from the tasks' outputs.
rows: List[List[str]] = []
best: Optional[float] = None
best_accuracy = -1.0
for run in odin.runs(labels={"sweep": SWEEP}):
    lr = run.parameters["lr"]
    loss = run.outputs("train").get("loss")
    accuracy = run.outputs("evaluate").get("accuracy")
    rows.append([str(lr), run.id, run.state.value, "-" if loss is None else f"{loss:.4f}",
                 "-" if accuracy is None else f"{accuracy:.3f}"])
    if accuracy is not None and accuracy > best_accuracy:
        best, best_accuracy = lr, accuracy
rows.sort(key=lambda r: float(r[0]))
header = ["LR", "RUN", "STATE", "LOSS", "ACCURACY"]
widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
for row in [header, *rows]:
    print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
print(f"best: lr={best} (accuracy {best_accuracy:.3f})" if best else "no run reported an accuracy")
for lr, message in errors.items():
    print(f"lr={lr}: {message}", file=sys.stderr)

# %% (Clean up: remove the runs' objects and data; the pushed pipeline stays in the repository's history.)
for run in runs.values():
    try:
        run.delete(purge=True)
    except OdinError as e:
        print(f"could not remove {run.id}: {e}", file=sys.stderr)
odin.close()
sys.exit(1 if errors or len(rows) != len(LEARNING_RATES) else 0)
