"""The training / evaluation loop: detectron2's DefaultTrainer with the project's data, optimizer and evaluation.

Nothing here assumes a particular model: any detectron2 meta-architecture that returns a loss dict in training
and [{"sem_seg": (K, H, W)}] in inference trains and evaluates. An open-vocabulary model (see the model protocol,
sed/modeling/protocol.py) gets each test dataset's vocabulary before that dataset is evaluated.

What this adds to DefaultTrainer:
- data: `sed.data.build.build_train_mapper` / `build_test_mapper`, `sed.evaluation.build_sem_seg_evaluator`;
- optimizer and schedule of `sed.engine.optimizer`;
- CPU processes under DistributedDataParallel (gloo) as well as GPUs;
- the iteration of `sed.engine.train_step.StepTrainer`: gradient accumulation (SOLVER.ACCUMULATE_STEPS), AMP
  (float16 + gradient scaling on GPUs, bfloat16 autocast on CPU), non-finite steps skipped;
- crash-safe checkpoints (`sed.checkpoint.loading.SafeCheckpointer`), and one at the current iteration on SIGTERM
  or SIGINT before the run stops (`sed.engine.stop_signals`);
- exact resume: the checkpoint holds the model, optimizer, scheduler, iteration, the data order's seed and the run
  seed; on resume the sampler skips the images already seen and every random generator is re-seeded as it was
  at that iteration (generators are re-seeded at every checkpoint iteration from (run seed, iteration, rank)),
  so N iterations equal N/2 + resume + N/2 exactly when DATALOADER.NUM_WORKERS is 0 (also after a stop on a
  signal at any iteration: that checkpoint holds the generators' states) (with workers, data
  augmentation draws from the workers' own generators, which restart);
- evaluation: skipping missing test datasets on request, `OUTPUT_DIR/results.json`, a results table.
"""

import itertools
import logging
import os
import weakref
from collections import OrderedDict

import numpy as np
import torch
from detectron2.data import build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.data.samplers import TrainingSampler
from detectron2.engine import DefaultTrainer, TrainerBase, hooks
from detectron2.evaluation import DatasetEvaluator, inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint.loading import SafeCheckpointer
from ..modeling.postprocess import label_outputs
from ..modeling.protocol import capabilities, unwrap_model
from ..utils.class_names import test_vocabulary
from .optimizer import build_lr_scheduler, build_optimizer
from .results import format_results, result_rows, write_results
from .stop_signals import StopOnSignalHook, set_rng_state
from .train_step import StepTrainer, micro_batch_size

__all__ = ["Trainer", "set_test_vocabulary", "derived_seed"]

logger = logging.getLogger(__name__)


def derived_seed(run_seed, iteration, rank):
    """A seed for (run, iteration, rank): the same on a resumed run as on an uninterrupted one."""
    return int(np.random.SeedSequence([int(run_seed), int(iteration), int(rank)]).generate_state(1)[0] % 2**31)


class ResumableTrainingSampler(TrainingSampler):
    """detectron2's TrainingSampler (an infinite stream of shuffled indices, sharded over ranks) that can start
    `skip` indices into its rank's stream: a resumed run continues the data order instead of restarting it."""

    def __init__(self, size, shuffle=True, seed=None):
        super().__init__(size, shuffle, seed)
        self.skip = 0

    def __iter__(self):
        start = self._rank + self.skip * self._world_size
        yield from itertools.islice(self._infinite_indices(), start, None, self._world_size)


class ReseedHook(hooks.HookBase):
    """Re-seeds python, numpy and torch generators after every checkpoint iteration (see the module docstring)."""

    def __init__(self, period, run_seed):
        self.period, self.run_seed = period, run_seed

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if self.period > 0 and next_iter % self.period == 0:
            seed_all_rng(derived_seed(self.run_seed, next_iter, comm.get_rank()))


class LRScheduler(hooks.LRScheduler):
    """detectron2's LRScheduler hook, logging the lr of the group with the largest lr (the base lr) instead of the
    group with the most parameters (for SED the CLIP image tower, at SOLVER.CLIP_MULTIPLIER x the base lr)."""

    def before_train(self):
        super().before_train()
        groups = self._optimizer.param_groups
        self._best_param_group_id = max(range(len(groups)), key=lambda i: groups[i]["lr"])


def _model_device(model):
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def set_test_vocabulary(cfg, model, dataset_name):
    """Gives an open-vocabulary model (`capabilities(model).open_vocabulary`) the vocabulary to evaluate
    `dataset_name` with: MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON if set, else the dataset's own (its metadata's
    `class_json` where the data layer records one, else its `stuff_classes`). Other models are left alone.
    Returns the vocabulary set, or None."""
    model = unwrap_model(model)
    if not capabilities(model).open_vocabulary:
        return None
    json_path = cfg.MODEL.SEM_SEG_HEAD.get("TEST_CLASS_JSON", "")
    names = test_vocabulary(cfg, dataset_name)
    model.set_vocabulary(names)
    logger.info(
        "Test vocabulary for %s: %d classes (%s)",
        dataset_name,
        len(names),
        json_path or f"from the dataset {dataset_name}",
    )
    return names


class Trainer(DefaultTrainer):
    """DefaultTrainer with the project's data, optimizer, schedule, evaluation, AMP, CPU DDP and exact resume."""

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        # A per-run seed (saved in checkpoints): SEED, or a random one shared by all ranks.
        self.run_seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()

        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader, self._train_sampler = self._build_train_loader(cfg, self.run_seed)
        model = self._wrap_ddp(cfg, model)
        self._trainer = self._build_step_trainer(cfg, model, data_loader, optimizer)

        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        # Atomic saves; --resume falls back to the newest readable checkpoint (sed/checkpoint/loading.py).
        self.checkpointer = SafeCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _wrap_ddp(cfg, model):
        if comm.get_world_size() == 1:
            return model
        on_gpu = _model_device(model).type == "cuda"
        return DistributedDataParallel(
            model, device_ids=[comm.get_local_rank()] if on_gpu else None, broadcast_buffers=False
        )

    @staticmethod
    def _build_step_trainer(cfg, model, data_loader, optimizer):
        device_type = _model_device(unwrap_model(model)).type
        amp_dtype = None
        if cfg.SOLVER.AMP.ENABLED and device_type == "cuda":
            logger.info("SOLVER.AMP.ENABLED: mixed precision with float16 autocast and gradient scaling.")
            amp_dtype = torch.float16
        elif cfg.SOLVER.AMP.ENABLED:
            logger.info(
                "SOLVER.AMP.ENABLED on %s: mixed precision with bfloat16 autocast (no gradient scaling); "
                "set SOLVER.AMP.ENABLED False for float32.",
                device_type,
            )
            amp_dtype = torch.bfloat16
        if cfg.SOLVER.ACCUMULATE_STEPS > 1:
            logger.info(
                "SOLVER.ACCUMULATE_STEPS: each step accumulates %d micro-batches of %d image(s) per process.",
                cfg.SOLVER.ACCUMULATE_STEPS,
                micro_batch_size(cfg, comm.get_world_size()),
            )
        return StepTrainer(
            model,
            data_loader,
            optimizer,
            accumulate_steps=cfg.SOLVER.ACCUMULATE_STEPS,
            amp_dtype=amp_dtype,
            device_type=device_type,
            max_consecutive_nonfinite=cfg.SOLVER.MAX_CONSECUTIVE_NONFINITE_STEPS,
        )

    @classmethod
    def build_model(cls, cfg):
        model = super().build_model(cfg)
        if cfg.SOLVER.get("CLIP_GRADIENT_CHECKPOINTING", False):
            logger.info("SOLVER.CLIP_GRADIENT_CHECKPOINTING: CLIP stage activations are recomputed in backward.")
        return model

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def _build_train_loader(cls, cfg, seed=None):
        from ..data.build import build_train_mapper

        mapper = build_train_mapper(cfg)
        # the loader yields micro-batches (SOLVER.ACCUMULATE_STEPS of them make one step of IMS_PER_BATCH images)
        batch = micro_batch_size(cfg, comm.get_world_size()) * comm.get_world_size()
        if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
            logger.info(
                "DATALOADER.SAMPLER_TRAIN=%s: a resumed run restarts its data order.", cfg.DATALOADER.SAMPLER_TRAIN
            )
            return build_detection_train_loader(cfg, mapper=mapper, total_batch_size=batch), None
        dataset = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
        sampler = ResumableTrainingSampler(len(dataset), seed=seed)
        # The loader's own generator: starting its iterator (at the first step, also of a resumed run) then draws
        # from it, not from torch's global generator, whose state a resumed run restores.
        loader_seed = None if seed is None else derived_seed(seed, 0, comm.get_rank())
        return build_detection_train_loader(
            cfg, mapper=mapper, dataset=dataset, sampler=sampler, total_batch_size=batch, seed=loader_seed
        ), sampler

    @classmethod
    def build_train_loader(cls, cfg):
        return cls._build_train_loader(cfg)[0]

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        from ..data.build import build_test_mapper

        return build_detection_test_loader(cfg, dataset_name, mapper=build_test_mapper(cfg))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        from ..evaluation import build_sem_seg_evaluator

        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_sem_seg_evaluator(cfg, dataset_name, output_folder)

    def build_hooks(self):
        ret = [
            LRScheduler()
            if type(h) is hooks.LRScheduler
            else hooks.EvalHook(self.cfg.TEST.EVAL_PERIOD, self.evaluate_as_eval_sh)
            if type(h) is hooks.EvalHook
            else h
            for h in super().build_hooks()
        ]
        ret.append(ReseedHook(self.cfg.SOLVER.CHECKPOINT_PERIOD, self.run_seed))
        ret.append(StopOnSignalHook())  # last: its checkpoint holds the state after every other hook's after_step
        return ret

    # ------------------------------------------------------------------ checkpoint state and resume
    def state_dict(self):
        ret = super().state_dict()
        ret["run_seed"] = self.run_seed
        if self._train_sampler is not None:
            ret["sampler_seed"] = self._train_sampler._seed
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.run_seed = state_dict.get("run_seed", self.run_seed)
        if self._train_sampler is not None and "sampler_seed" in state_dict:
            self._train_sampler._seed = int(state_dict["sampler_seed"])
        for h in self._hooks:
            if isinstance(h, ReseedHook):
                h.run_seed = self.run_seed

    def resume_or_load(self, resume=True):
        # DefaultTrainer.resume_or_load, keeping the checkpoint's extra data (the generators of a stopped run)
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            self.start_iter = self.iter + 1  # the checkpoint holds the iteration that just finished
        if self.start_iter > 0:
            per_rank_batch = self.cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
            if self._train_sampler is not None:
                self._train_sampler.skip = self.start_iter * per_rank_batch
            seed_all_rng(derived_seed(self.run_seed, self.start_iter, comm.get_rank()))
            states = checkpoint.get("rng_state")  # per rank; saved on a signal, between two re-seeding iterations
            if states is not None and len(states) == comm.get_world_size():
                set_rng_state(states[comm.get_rank()])
            elif states is not None:
                logger.warning(
                    "The checkpoint was saved by %d processes, this run has %d: random generators "
                    "re-seeded, so the run will not repeat the stopped one exactly.",
                    len(states),
                    comm.get_world_size(),
                )
            logger.info(
                "Resuming at iteration %d (data order continues after %d images per process).",
                self.start_iter,
                self.start_iter * per_rank_batch,
            )

    # ------------------------------------------------------------------ evaluation
    def evaluate_as_eval_sh(self):
        """The evaluation of TEST.EVAL_PERIOD and of the end of training: each dataset of DATASETS.TEST with the
        settings eval.sh uses for it (`sed.engine.eval_suite.evaluation_config`: for SED on a benchmark, its
        class names and pooling 1x1), on a model built from that config, as eval.sh builds it, holding the
        current weights; so the last number equals eval.sh's on model_final.pth. Missing datasets are skipped
        (as eval.sh does); results go to OUTPUT_DIR/eval_in_training/<dataset>/results.json, and all of them to
        OUTPUT_DIR/results.json."""
        from .eval_suite import evaluation_config

        weights = unwrap_model(self.model).state_dict()
        results = OrderedDict()
        for dataset in self.cfg.DATASETS.TEST:
            cfg = evaluation_config(self.cfg, dataset)
            cfg.defrost()
            cfg.OUTPUT_DIR = os.path.join(self.cfg.OUTPUT_DIR, "eval_in_training", dataset)
            cfg.freeze()
            model = self.build_model(cfg)
            model.load_state_dict(weights)
            result = self.test(cfg, model, skip_missing_datasets=True)
            if result:
                results[dataset] = result
            del model
        if comm.is_main_process() and self.cfg.OUTPUT_DIR:
            write_results(results, os.path.join(self.cfg.OUTPUT_DIR, "results.json"))
        self._last_eval_results = list(results.values())[0] if len(results) == 1 else results
        return self._last_eval_results

    @classmethod
    def test(cls, cfg, model, evaluators=None, skip_missing_datasets=False):
        """Evaluates `model` on every dataset of DATASETS.TEST (detectron2's DefaultTrainer.test contract: one
        dataset gives its evaluator's dict, several a dict by dataset). Writes OUTPUT_DIR/results.json and logs a
        table. With `skip_missing_datasets`, a dataset whose files are missing is recorded as skipped instead of
        failing the run."""
        if isinstance(evaluators, DatasetEvaluator):
            evaluators = [evaluators]
        if evaluators is not None and len(evaluators) != len(cfg.DATASETS.TEST):
            raise ValueError(f"{len(evaluators)} evaluators for {len(cfg.DATASETS.TEST)} test datasets")
        results = OrderedDict()
        for idx, dataset_name in enumerate(cfg.DATASETS.TEST):
            try:
                data_loader = cls.build_test_loader(cfg, dataset_name)
            except FileNotFoundError as e:
                if not skip_missing_datasets:
                    raise
                logger.warning("Skipping %s: %s", dataset_name, e)
                results[dataset_name] = {"skipped": str(e)}
                continue
            evaluator = evaluators[idx] if evaluators is not None else cls.build_evaluator(cfg, dataset_name)
            set_test_vocabulary(cfg, model, dataset_name)
            # Evaluators that take label maps get them from models that can skip the (K, H, W) scores.
            with label_outputs(unwrap_model(model), getattr(evaluator, "accepts_label_maps", False)):
                results[dataset_name] = inference_on_dataset(model, data_loader, evaluator)
            if comm.is_main_process():
                logger.info("Evaluation results for %s in csv format:", dataset_name)
                print_csv_format(results[dataset_name])
        if comm.is_main_process():
            if cfg.OUTPUT_DIR:
                write_results(results, os.path.join(cfg.OUTPUT_DIR, "results.json"))
            logger.info("Results:\n%s", format_results(result_rows(results)))
        evaluated = OrderedDict((k, v) for k, v in results.items() if not (isinstance(v, dict) and "skipped" in v))
        if len(evaluated) == 1 and len(results) == 1:
            return list(evaluated.values())[0]
        return evaluated
