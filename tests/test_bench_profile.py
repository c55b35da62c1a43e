"""jgan.bench.profile (HLO classification, trace parsing), its torch side, profile_step.py."""

import gzip
import json
import os
import runpy

import jax
import jax.numpy as jnp
import pytest

from jgan.bench import profile
from tests.conftest import REPO

HLO = """HloModule jit_step

%fused_dot (p0: f32[4,8], p1: f32[8,2]) -> f32[4,2] {
  %p0 = f32[4,8]{1,0} parameter(0)
  %p1 = f32[8,2]{1,0} parameter(1)
  ROOT %dot.1 = f32[4,2]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_move (p0: f32[4,8]) -> f32[2,16] {
  %p0 = f32[4,8]{1,0} parameter(0)
  %slice.1 = f32[2,8]{1,0} slice(%p0), slice={[0:2], [0:8]}
  %slice.2 = f32[2,8]{1,0} slice(%p0), slice={[2:4], [0:8]}
  ROOT %concatenate.1 = f32[2,16]{1,0} concatenate(%slice.1, %slice.2), dimensions={1}
}

%fused_norm (p0: f32[4,8]) -> f32[8] {
  %p0 = f32[4,8]{1,0} parameter(0)
  %c = f32[] constant(0)
  ROOT %reduce.1 = f32[8]{0} reduce(%p0, %c), dimensions={0}, to_apply=%add
}

%fused_ew (p0: f32[4,8]) -> f32[4,8] {
  %p0 = f32[4,8]{1,0} parameter(0)
  ROOT %multiply.1 = f32[4,8]{1,0} multiply(%p0, %p0)
}

ENTRY %main.9 (a: f32[4,8], b: f32[8,2]) -> (f32[4,2], f32[2,16]) {
  %a = f32[4,8]{1,0} parameter(0)
  %b = f32[8,2]{1,0} parameter(1)
  %ynn_fusion.3 = f32[4,2]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_dot, metadata={op_name="jit(step)/transpose(jvp(DCGANGenerator))/up3/transpose(jvp())/dot_general" stack_frame_id=1}
  %slice_fusion = f32[2,16]{1,0} fusion(%a), kind=kLoop, calls=%fused_move, metadata={op_name="jit(step)/jvp(DCGANGenerator)/up2/slice"}
  %reduce_fusion = f32[8]{0} fusion(%a), kind=kInput, calls=%fused_norm, metadata={op_name="jit(step)/jvp(DCGANDiscriminator)/BatchNorm_0/reduce_sum"}
  %multiply_fusion = f32[4,8]{1,0} fusion(%a), kind=kLoop, calls=%fused_ew, metadata={op_name="jit(step)/mul"}
  %copy.7 = f32[4,8]{0,1} copy(%a)
  %while.2 = (s32[], u32[4]{0}) while(%t), condition=%cond, body=%body, metadata={op_name="jit(step)/jit(_threefry_split)/while"}
  ROOT %tuple = (f32[4,2]{1,0}, f32[2,16]{1,0}) tuple(%ynn_fusion.3, %slice_fusion)
}
"""


def test_classify_hlo_golden():
  ops = profile.classify_hlo(HLO)
  expect = {"ynn_fusion.3": (profile.MATMUL, "DCGANGenerator/up3", True),
            "slice_fusion": (profile.MOVE, "DCGANGenerator/up2", False),
            "reduce_fusion": (profile.NORM, "DCGANDiscriminator/BatchNorm_0", False),
            "multiply_fusion": (profile.ELEMENTWISE, "", False),
            "copy.7": (profile.MOVE, "", False),
            "while.2": (profile.OTHER, "", False)}
  for name, (category, layer, backward) in expect.items():
    op = ops[name]
    assert (op.category, op.layer, op.backward) == (category, layer, backward), op


def test_layer_from_op_name():
  assert profile._layer("jit(step)/transpose(jvp(DCGANDiscriminator))/conv1/"
                        "transpose(jvp())/conv_general_dilated") == (
                            "DCGANDiscriminator/conv1", True)
  assert profile._layer("jit(step)/jit(_threefry_fold_in)/make_gan_step.<locals>.step/while"
                        ) == ("", False)


def test_thunk_times_sums_events_per_name(tmp_path):
  run = tmp_path / "plugins" / "profile" / "2026_01_01"
  run.mkdir(parents=True)
  events = [{"ph": "X", "name": "dot.1", "dur": 1000}, {"ph": "X", "name": "dot.1", "dur": 500},
            {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 2000},
            {"ph": "M", "name": "process_name"}]
  with gzip.open(run / "host.trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)
  times, executor = profile.thunk_times(str(tmp_path))
  assert times == {"dot.1": pytest.approx(1.5e-3)}
  assert executor == pytest.approx(2e-3)
  with pytest.raises(FileNotFoundError, match="No jax.profiler trace"):
    profile.thunk_times(str(tmp_path / "empty"))


def test_torch_categories():
  from benchmarks.torch_ref import torch_profile  # the torch side: imports torch
  assert torch_profile.torch_category("aten::convolution_backward") == profile.MATMUL
  assert torch_profile.torch_category("aten::addmm") == profile.MATMUL
  assert torch_profile.torch_category("aten::native_batch_norm") == profile.NORM
  assert torch_profile.torch_category("aten::copy_") == profile.MOVE
  assert torch_profile.torch_category("aten::leaky_relu") == profile.ELEMENTWISE
  assert torch_profile.torch_category("ProfilerStep*") == profile.OTHER


def test_profile_jax_attributes_a_matmul_step():
  # 1024: the matmuls (n^3) outweigh tanh (n^2) by a margin that survives a loaded machine
  # (at 512 a CI run sharing its cores with training once timed tanh longer).
  x = jnp.ones((1024, 1024))
  f = jax.jit(lambda a: jnp.tanh(a @ a) @ a)
  compiled = f.lower(x).compile()
  jax.block_until_ready(f(x))
  p = profile.profile_jax(lambda: f(x), compiled.as_text(), steps=2)
  assert p.by_category[profile.MATMUL] > 0
  assert max(p.by_category, key=p.by_category.get) == profile.MATMUL
  # The thunks ran inside the timed calls (a 2-thread pool could overlap a little).
  assert 0 < sum(p.by_category.values()) < 2 * p.step_s
  assert p.by_op[0][3] >= p.by_op[-1][3]


def test_profile_step_cli_on_a_tiny_workload(tmp_path, capsys):
  pytest.importorskip("torch")
  out = tmp_path / "profile.json"
  module = runpy.run_path(os.path.join(REPO, "benchmarks", "profile_step.py"))
  results = module["main"](["--workloads", "mlp_gan_b64", "--tiny", "--steps", "1",
                            "--out", str(out)])
  printed = capsys.readouterr().out
  assert "## mlp_gan_b64" in printed and "jgan by layer" in printed
  saved = json.loads(out.read_text())
  assert saved == json.loads(json.dumps(results))
  for side in ("jgan", "torch"):
    assert saved[0][side]["ms_by_category"][profile.MATMUL] > 0, side
  assert any(k.startswith("MLPGenerator/") for k in saved[0]["jgan"]["ms_by_layer"]), (
      saved[0]["jgan"]["ms_by_layer"])
  with pytest.raises(SystemExit):
    module["main"](["--workloads", "dcgan_128"])


def test_cpu_step_copies_no_parameter():
  """Donating the state on CPU makes XLA copy each parameter the step still reads before it
  updates it in place (20 MB per MLP GAN step): the steps are not donated there."""
  import re
  from jgan import train
  from jgan.bench import workloads
  assert train.state_donation() == ()
  jg = workloads.build_jgan(workloads.WORKLOADS["mlp_gan_b64"], tiny=True)
  entry = jg.compiled.as_text().split("\nENTRY", 1)[1]
  params = set(re.findall(r"%([\w.\-]+) = \S+ parameter\(", entry))
  copied = set(re.findall(r"copy\(%([\w.\-]+)\)", entry))
  assert params and not params & copied, sorted(params & copied)
