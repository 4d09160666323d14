"""``benchmarks/profile_step.py`` (issue 16): one profiled training step and decode step on the CPU with
tiny sizes, whose tables name every category and whose shares add up to 100%; and the category rules,
including the CUDA path (kernels by their launching op, GPU idle time), on made-up profiler events."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from torch.autograd import DeviceType

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def profile_step():
    spec = importlib.util.spec_from_file_location("profile_step", ROOT / "benchmarks" / "profile_step.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["profile_step"] = module  # its dataclass looks its module up while being defined
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("profile_step", None)


def test_profiles_a_tiny_training_and_decode_step_on_the_cpu(profile_step, tmp_path, capsys):
    out = tmp_path / "profile.md"
    results = profile_step.main(["--device", "cpu", "--preset", "debug", "--batch", "2", "--length", "16",
                                 "--warmup", "1", "--repeat", "1", "--loss-chunk", "7",
                                 "--pitch-loss-weight", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert out.read_text() in printed
    cpu_rows = [c for c in profile_step.CATEGORIES if c != profile_step.IDLE]
    for name, result in results.items():
        assert list(result.ms) == cpu_rows, name
        assert sum(result.share.values()) == pytest.approx(100.0, abs=0.01), name
        assert result.ms[profile_step.MATMUL] > 0 and result.ms[profile_step.ATTENTION] > 0, name
        assert result.extra["flops"] > 0 and result.extra["step_ms"] > 0, name
    assert results["train"].ms[profile_step.OPTIMIZER] > 0 and results["train"].ms[profile_step.VOCAB] > 0
    assert results["decode"].ms[profile_step.OPTIMIZER] == 0
    for heading in ("### Training step", "### Decode step", "loss_chunk 7", "pitch_loss_weight 3.0", "TFLOP/s"):
        assert heading in printed
    for table in printed.split("### ")[1:]:  # each table: every category, shares summing to ~100%
        rows = dict(re.findall(r"^\| ([^|*]+?) \| [\d.]+ \| ([\d.]+)% \|$", table, flags=re.M))
        assert list(rows) == cpu_rows
        assert sum(float(v) for v in rows.values()) == pytest.approx(100.0, abs=0.5)


def test_bad_arguments_are_named(profile_step, capsys):
    for argv, named in ((["--loss-chunk", "-1"], "loss_chunk"), (["--batch", "0"], "--batch"),
                        (["--length", "100000", "--preset", "debug"], "--length")):
        with pytest.raises(SystemExit):
            profile_step.main(["--device", "cpu", *argv])
        assert named in capsys.readouterr().err


def test_categories_of_ops_and_kernels(profile_step):
    ps = profile_step
    assert ps.op_category("aten::addmm") == ps.MATMUL
    assert ps.op_category("autograd::engine::evaluate_function: MmBackward0") == ps.MATMUL
    assert ps.op_category("aten::_scaled_dot_product_flash_attention_for_cpu") == ps.ATTENTION
    assert ps.op_category("autograd::engine::evaluate_function: NllLossBackward0") == ps.VOCAB
    assert ps.op_category("Optimizer.step#AdamW.step") == ps.OPTIMIZER
    assert ps.op_category("aten::native_layer_norm") == ps.ELEMENTWISE
    assert ps.op_category("aten::copy_") == ps.COPIES
    assert ps.op_category("aten::_local_scalar_dense") == ps.SYNC
    assert ps.op_category("profile_step: training step") is None
    # an op inside a matmul, attention, vocabulary or optimizer op takes that op's category
    event = lambda name, parent=None: SimpleNamespace(name=name, cpu_parent=parent)  # noqa: E731
    sdpa = event("aten::scaled_dot_product_attention")
    assert ps.event_category(event("aten::_softmax", event("aten::bmm", sdpa))) == ps.ATTENTION
    assert ps.event_category(event("aten::add", event("autograd::engine::evaluate_function: ViewBackward0"))) \
        == ps.ELEMENTWISE  # ... inside the others, the innermost op decides
    assert ps.kernel_category("fmha_cutlassF_bf16_aligned_64x64_rf_sm80") == ps.ATTENTION
    assert ps.kernel_category("triton_red_fused__log_softmax_3") == ps.VOCAB
    assert ps.kernel_category("Memcpy DtoH (Device -> Pinned)") == ps.COPIES


def test_cuda_breakdown_attributes_kernels_to_their_ops_and_counts_idle_time(profile_step):
    ps = profile_step
    span = lambda start, end: SimpleNamespace(start=start, end=end, elapsed_us=lambda: end - start)  # noqa: E731

    def cpu(id_, name, start, end, parent=None):
        return SimpleNamespace(id=id_, name=name, device_type=DeviceType.CPU, linked_correlation_id=0,
                               cpu_parent=parent, time_range=span(start, end), self_cpu_time_total=end - start)

    def kernel(launcher, name, start, end):
        return SimpleNamespace(id=0, name=name, device_type=DeviceType.CUDA, linked_correlation_id=launcher,
                               cpu_parent=None, time_range=span(start, end))

    linear = cpu(1, "aten::linear", 0, 50)
    events = [linear, cpu(2, "aten::addmm", 5, 40, linear), cpu(3, "cudaStreamSynchronize", 60, 900),
              kernel(2, "sm90_xmma_gemm_bf16", 100, 400), kernel(99, "triton_poi_fused_add_0", 400, 500),
              kernel(99, "void flash_fwd_kernel", 450, 550)]  # the last two overlap by 50 us
    annotation = kernel(0, "profile_step: training step", 0, 1000)  # a record_function's range on the GPU
    events.append(SimpleNamespace(**{**vars(annotation), "is_user_annotation": True}))
    result = ps.breakdown(events, wall_ms=1.0, cuda=True)
    assert result.ms[ps.MATMUL] == pytest.approx(0.3)
    assert result.ms[ps.ELEMENTWISE] == pytest.approx(0.1) and result.ms[ps.ATTENTION] == pytest.approx(0.1)
    assert result.ms[ps.IDLE] == pytest.approx(1.0 - 0.45)  # the kernels cover 450 us of the 1 ms step
    assert result.host_syncs == 1 and result.host_sync_ms == pytest.approx(0.84)
    assert sum(result.share.values()) == pytest.approx(100.0)
    assert "GPU idle" in result.table() and "1 synchronize calls" in result.table()
