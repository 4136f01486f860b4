"""``python -m matgrad``: train an MLP (``--model mlp``, the default) or a small CNN (``--model cnn``,
images as (N, 1, 8, 8)) on the bundled handwritten digits.

Fixed train/test split (1,438 / 359 images), a tqdm bar per epoch with the loss and accuracy,
and the test accuracy as the last line printed: ``test accuracy: NN.NN%``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import matgrad as mg
from matgrad.data.files import SKLEARN_DATASETS, DataError, load_sklearn, load_table, standardize, stratified_split

_DEFAULT_LR = {("mlp", "adam"): 3e-3, ("mlp", "sgd"): 0.05, ("cnn", "adam"): 3e-3, ("cnn", "sgd"): 0.02}
# The CNN's learning rate falls by _CNN_LR_DECAY every _CNN_LR_STEP epochs (mg.optim.StepLR):
# measured over seeds 0-5, it lands at 98.9-99.4% where a constant rate spread over 98.3-99.7%.
_CNN_LR_STEP, _CNN_LR_DECAY = 8, 0.25
_SGD_MOMENTUM = 0.9


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _hidden_sizes(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128 or 128,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _output_path(text: str) -> str:
    """A file to write after training: its folder must exist now, not only after the work."""
    directory = os.path.dirname(text)
    if directory and not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"directory {directory!r} does not exist")
    return text


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (exclusive), got {text!r}")
    return value


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m matgrad",
        description="Train an MLP or a CNN on the bundled UCI handwritten digits (8x8, 10 classes) with matgrad, "
                    "or an MLP on your own table (--data) or a bundled one (--dataset).")
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                   help="mlp: linear/ReLU layers (--hidden); cnn: conv 3x3 (16) -> ReLU -> conv 3x3 (32) -> "
                        "ReLU -> max pool 2 -> linear, on (N, 1, 8, 8) images (default: mlp)")
    p.add_argument("--data", metavar="FILE", default=None,
                   help="train on your own table instead: .npz with arrays X (N, D) and y (N,), or .csv with a "
                        "header row, the label in the last column (or --target); features are standardised "
                        "with the training split's statistics")
    p.add_argument("--target", metavar="NAME", default=None, help="the label column of a --data .csv")
    p.add_argument("--dataset", choices=["digits", *SKLEARN_DATASETS], default=None,
                   help="a bundled table: digits (default), or scikit-learn's iris, wine, breast_cancer "
                        "(needs scikit-learn)")
    p.add_argument("--test-size", type=_fraction, default=None, metavar="FRACTION",
                   help="the test share of a stratified, seeded split (default: 0.2; the digits keep their "
                        "fixed split unless this is given)")
    p.add_argument("--hidden", type=_hidden_sizes, default=None, metavar="SIZES",
                   help="hidden layer sizes of the MLP, comma-separated (default: 128)")
    p.add_argument("--epochs", type=_positive_int, default=20, help="passes over the training set (default: 20)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 0.003 for adam, 0.05 for sgd; for the cnn 0.003 and 0.02, "
                        f"times {_CNN_LR_DECAY} every {_CNN_LR_STEP} epochs)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per step (default: 32)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                   help=f"adam, or sgd with momentum {_SGD_MOMENTUM} (default: adam)")
    p.add_argument("--threads", type=_positive_int, default=None, help="kernel threads (default: OpenMP's)")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed for initialisation and shuffling (default: 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="(default: float32)")
    p.add_argument("--save", metavar="PATH", type=_output_path, default=None,
                   help="save a checkpoint (.npz: parameters, optimizer state, epoch, data order) at the end "
                        "of every epoch, atomically; mg.load reads its parameters")
    p.add_argument("--resume", metavar="PATH", type=_existing_file, default=None,
                   help="continue from a --save checkpoint: same options, training goes on from its epoch "
                        "with the same data order and optimizer state")
    p.add_argument("--distributed", action="store_true",
                   help="train data-parallel over the ranks of an MPI job (mpiexec -n N python -m matgrad "
                        "--distributed): each step's --batch-size images are split across the ranks and their "
                        "gradients averaged, so --lr is the rate for that global batch; rank 0 prints and saves; "
                        "each rank runs cores/ranks threads unless --threads or OMP_NUM_THREADS says otherwise "
                        f"(needs mpi4py: {mg.distributed.MPI_EXTRA})")
    p.add_argument("--plot", metavar="FILE", type=_output_path, default=None,
                   help="save loss and accuracy curves as a PNG (needs matplotlib: pip install 'matgrad[plot]')")
    return p


def _load_data(args: argparse.Namespace, dtype: np.dtype) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                 Optional[List[Any]], str]:
    """(x_train, y_train, x_test, y_test, classes or None, what the rows are) for the options."""
    if args.data is None and args.dataset in (None, "digits"):
        if args.test_size is None:
            return (*mg.data.load_digits_split(dtype), None, "digits")
        x, y = mg.data.load_digits(dtype)
        train, test = stratified_split(y, args.test_size, args.seed)
        return x[train], y[train], x[test], y[test], None, "digits"
    table = load_table(args.data, args.target) if args.data is not None else load_sklearn(args.dataset)
    train, test = stratified_split(table.y, 0.2 if args.test_size is None else args.test_size, args.seed)
    if len(test) == 0:
        raise DataError(f"{args.data or args.dataset}: {len(table.y)} rows are too few to split off a test set")
    x_train, x_test = standardize(table.x[train], table.x[test])
    source = f"rows of {args.data}" if args.data is not None else f"rows of {args.dataset}"
    return (x_train.astype(dtype), table.y[train], x_test.astype(dtype), table.y[test], table.classes, source)


def _resume(parser: argparse.ArgumentParser, path: str, model: mg.nn.Module, opt: mg.optim.Optimizer,
            schedule: Optional[mg.optim.StepLR], shuffle: np.random.Generator,
            config: Dict[str, Any]) -> Tuple[int, Dict[str, List[float]]]:
    """Restore a --save checkpoint into the run; returns (first epoch to train, history)."""
    try:
        extra = mg.load_checkpoint(path, model, opt)
    except (mg.CheckpointError, OSError) as e:
        parser.error(f"--resume: {e}")
    keys = ("epoch", "config", "history", "shuffle", "init", "schedule")
    if any(k not in extra for k in keys):
        parser.error(f"--resume: {path} holds parameters but not the training state of python -m matgrad "
                     f"--save (missing {[k for k in keys if k not in extra]})")
    for key, value in config.items():
        saved = extra["config"].get(key)
        if saved != value:
            parser.error(f"--resume: {path} was trained with {key} {saved!r}; this run has {value!r} "
                         "(resume with the same options)")
    shuffle.bit_generator.state = extra["shuffle"]
    mg.random.generator().bit_generator.state = extra["init"]
    if schedule is not None:
        schedule.load_state_dict(extra["schedule"])
    return int(extra["epoch"]) + 1, {k: list(v) for k, v in extra["history"].items()}


def _accuracy(model: mg.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()  # dropout off, batch norm on its running statistics
    try:
        with mg.no_grad():
            return float((model(mg.tensor(x)).data.argmax(axis=1) == y).mean())
    finally:
        model.train()


def _plot(history: Dict[str, List[float]], path: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history["loss"], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="loss")
    ax_acc.plot(epochs, np.array(history["train_acc"]) * 100, marker="o", label="train")
    ax_acc.plot(epochs, np.array(history["test_acc"]) * 100, marker="o", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, dpi=100)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.hidden is not None and args.model != "mlp":
        parser.error("--hidden sets the MLP's layers; it does not apply to --model cnn")
    if args.data is not None and args.dataset is not None:
        parser.error("--data and --dataset each choose the training data: give one")
    if args.target is not None and args.data is None:
        parser.error("--target names the label column of a --data .csv file")
    if args.model == "cnn" and (args.data is not None or args.dataset not in (None, "digits")):
        parser.error("--model cnn needs the 8x8 images of the bundled digits; use --model mlp for other data")
    if args.hidden is None:
        args.hidden = [128]
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib, which is not installed; "
                         "install it with: pip install 'matgrad[plot]'")
    from tqdm import tqdm

    rank, world = 0, 1
    if args.distributed:
        if mg.distributed._import_mpi() is None:
            parser.error("--distributed needs mpi4py and an MPI library, which are not installed; "
                         f"install them with: {mg.distributed.MPI_EXTRA}")
        rank, world = mg.distributed.init(threads=args.threads)
        if args.batch_size < world:
            parser.error(f"--batch-size {args.batch_size} is smaller than the {world} ranks: each rank needs at "
                         "least one sample per step")
    elif args.threads is not None:
        mg.set_num_threads(args.threads)
    root = rank == 0
    say = mg.distributed.print0  # print, on rank 0 only
    dtype = np.dtype(args.dtype)
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.model, args.optimizer]
    try:
        x_train, y_train, x_test, y_test, classes, source = _load_data(args, dtype)
    except DataError as e:
        parser.error(str(e))
    if classes is not None:
        say("classes: " + ", ".join(f"{k} = {c}" for k, c in enumerate(classes)))

    mg.manual_seed(args.seed)
    shuffle = np.random.default_rng(args.seed)
    if args.model == "cnn":
        x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)  # (N, C, H, W)
        model = mg.nn.digits_cnn(dtype=dtype)
        name = "CNN conv3x3(16)-conv3x3(32)-maxpool2-linear(10)"
    else:
        sizes = [x_train.shape[1], *args.hidden, int(max(y_train.max(), y_test.max(initial=0))) + 1]
        model = mg.nn.MLP(sizes, dtype=dtype)
        name = f"MLP {'-'.join(map(str, sizes))}"
    opt: mg.optim.Optimizer
    if args.optimizer == "adam":
        opt = mg.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = mg.optim.SGD(model.parameters(), lr=lr, momentum=_SGD_MOMENTUM)
    schedule = mg.optim.StepLR(opt, _CNN_LR_STEP, _CNN_LR_DECAY) if args.model == "cnn" else None
    decay = f" (x{_CNN_LR_DECAY:g} every {_CNN_LR_STEP} epochs)" if schedule else ""
    epochs = f"{args.epochs} epoch" + ("s" if args.epochs != 1 else "")
    ranks = f" over {world} ranks ({-(-args.batch_size // world)} per rank)" if args.distributed else ""
    threads = "threads per rank" if args.distributed else "threads"
    say(f"{name} on {len(x_train)} training / {len(x_test)} test {source}: "
        f"{args.optimizer} lr {lr:g}{decay}, batch {args.batch_size}{ranks}, {epochs}, {dtype}, "
        f"{threads}: {mg.get_num_threads()}")

    history: Dict[str, List[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    # What a checkpoint must agree on to be resumed (the epoch count may grow).
    config = {"model": args.model, "hidden": list(args.hidden), "optimizer": args.optimizer, "lr": lr,
              "batch_size": args.batch_size, "seed": args.seed, "dtype": args.dtype, "data": args.data,
              "dataset": args.dataset, "target": args.target, "test_size": args.test_size}
    first_epoch = 1
    if args.resume is not None:
        first_epoch, history = _resume(parser, args.resume, model, opt, schedule, shuffle, config)
        say(f"resumed from {args.resume} after epoch {first_epoch - 1}")
    if args.distributed:  # the same start on every rank, whatever each built or loaded
        mg.distributed.broadcast_parameters(model)
    n = len(x_train)
    start = time.perf_counter()
    for epoch in range(first_epoch, args.epochs + 1):
        order = shuffle.permutation(n)
        total_loss, correct, seen = 0.0, 0, 0
        steps = range(0, n, args.batch_size)
        bar = tqdm(total=len(steps), desc=f"epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}",
                   unit="batch", leave=True, file=sys.stderr, disable=not root)
        for i in steps:
            batch = order[i:i + args.batch_size]
            idx = batch[rank::world]  # this rank's share of the global batch (all of it in one process)
            opt.zero_grad()
            if len(idx):  # a short last batch may leave a rank nothing: its gradients count as zeros
                xb, yb = x_train[idx], y_train[idx]
                logits = model(mg.tensor(xb))
                loss = mg.cross_entropy(logits, yb)
                # The ranks' mean losses, averaged by allreduce_gradients, weighted so that the step
                # is the one-process step on the global batch even when shares are unequal.
                share = len(idx) * world / len(batch)
                (loss if share == 1 else loss * share).backward()
                total_loss += loss.item() * len(idx)
                correct += int((logits.data.argmax(axis=1) == yb).sum())
                seen += len(idx)
            if args.distributed:
                mg.distributed.allreduce_gradients(model)
            opt.step()
            shown = max(seen, 1)
            bar.set_postfix({"loss": f"{total_loss / shown:.4f}", "acc": f"{100 * correct / shown:.2f}%"},
                            refresh=False)
            bar.update(1)
        if args.distributed:  # the epoch's figures over the whole training set, not rank 0's share
            totals = mg.distributed.allreduce([total_loss, correct, seen])
            total_loss, correct, seen = float(totals[0]), int(totals[1]), int(totals[2])
        test_acc = _accuracy(model, x_test, y_test)
        history["loss"].append(total_loss / seen)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(test_acc)
        bar.set_postfix({"loss": f"{total_loss / seen:.4f}", "acc": f"{100 * correct / seen:.2f}%",
                         "test acc": f"{100 * test_acc:.2f}%"})
        bar.close()
        if schedule is not None:
            schedule.step()
        if args.save is not None and root:  # every epoch, atomically: a crash leaves the last one whole
            mg.save(model, args.save, optimizer=opt, extra={
                "epoch": epoch, "config": config, "history": history, "classes": classes,
                "shuffle": shuffle.bit_generator.state, "init": mg.random.generator().bit_generator.state,
                "schedule": None if schedule is None else schedule.state_dict()})
    elapsed = time.perf_counter() - start
    say(f"trained in {elapsed:.2f} s")

    if args.save is not None:
        say(f"saved the checkpoint to {args.save}")
    if args.plot is not None and root:
        _plot(history, args.plot)
        say(f"saved the curves to {args.plot}")
    if not history["test_acc"]:  # resumed at or past the last epoch: nothing was trained
        history["test_acc"].append(_accuracy(model, x_test, y_test))
    say(f"test accuracy: {100 * history['test_acc'][-1]:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
