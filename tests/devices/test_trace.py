"""Trace CSV reading (strict validation, one clear line per problem) and segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from mstpn.devices.trace import BiasPhase, Pulse, Trace, TraceError, read_trace_csv, segment
from mstpn.errors import UserError

GOOD = """time_s,voltage_v,current_a
0.0,0.1,1e-9
0.5,0.1,1.1e-9
1.0,1.5,3e-8
1.001,1.5,3e-8
1.01,0.1,2e-9
2.0,0.1,1.9e-9
"""


def write(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_a_valid_trace_with_any_column_order_extra_columns_and_comments(tmp_path):
    path = write(tmp_path, "# exported by some SMU\n"
                           "current_a, time_s ,status,voltage_v\n"
                           "1e-9,0.0,ok,0.1\n\n"
                           "2e-9,0.5,ok,0.1\n"
                           "3e-8,1.0,hi,1.5\n"
                           "3e-8,1.001,hi,1.5\n"
                           "2e-9,1.5,ok,0.1\n")
    trace = read_trace_csv(path)
    np.testing.assert_allclose(trace.time_s, [0.0, 0.5, 1.0, 1.001, 1.5])
    np.testing.assert_allclose(trace.voltage_v, [0.1, 0.1, 1.5, 1.5, 0.1])
    np.testing.assert_allclose(trace.current_a, [1e-9, 2e-9, 3e-8, 3e-8, 2e-9])
    assert trace.source == str(path)
    assert trace.lines.tolist() == [3, 5, 6, 7, 8]
    assert trace.time_s.dtype == np.float64


BAD_CASES = [
    ("", "empty file"),
    ("# only a comment\n\n", "empty file"),
    ("time_s,voltage_v,current_a\n", "no data rows after the header"),
    ("time_s,voltage_v\n0,0.1\n", "missing column 'current_a'"),
    ("time_s,voltage_v,current\n0,0.1,1e-9\n", "missing column 'current_a' (found 'current' instead)"),
    ("t,v,i\n0,0.1,1e-9\n", "missing column 'time_s', 'voltage_v', 'current_a'"),
    ("time_s,voltage_v,current_a,time_s\n0,0.1,1e-9,0\n", "column 'time_s' appears 2 times"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,0.1\n", "line 3: expected 3 cells like the header, found 2"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,0.1,abc\n",
     "line 3: column 'current_a' is not a number: 'abc'"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,,1e-9\n", "line 3: column 'voltage_v' is empty"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,nan,1e-9\n", "line 3: column 'voltage_v' is nan"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,0.1,inf\n", "line 3: column 'current_a' is inf"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,0.1,1e-9\n1,0.1,1e-9\n",
     "line 4: time_s 1 is not after the previous sample's 1"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n2,0.1,1e-9\n1,0.1,1e-9\n",
     "line 4: time_s 1 is not after the previous sample's 2"),
    ("time_s,voltage_v,current_a\n0,0.1,1e-9\n1,1.2,1e-8\n2,0.1,1e-9\n",
     "line 3: pulse of 1.2 V has a single sample"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CASES)
def test_bad_trace_files_raise_one_clear_line_with_file_and_row(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        read_trace_csv(path)
    text = str(info.value)
    assert isinstance(info.value, UserError)
    assert message in text
    assert text.startswith(str(path))
    assert "\n" not in text


def test_missing_file_and_bad_threshold(tmp_path):
    with pytest.raises(TraceError, match="no such trace file"):
        read_trace_csv(tmp_path / "nope.csv")
    with pytest.raises(TraceError, match="pulse threshold"):
        read_trace_csv(write(tmp_path, GOOD), pulse_threshold=-1.0)


def test_threshold_decides_what_is_a_pulse(tmp_path):
    trace = read_trace_csv(write(tmp_path, GOOD))
    assert sum(isinstance(e, Pulse) for e in segment(trace, 0.5)) == 1
    assert sum(isinstance(e, Pulse) for e in segment(trace, 2.0)) == 0


def test_segment_pulses_phases_levels_and_reads():
    t = np.array([0.0, 1.0, 2.0, 2.0 + 1e-3, 2.1, 2.2, 3.0, 3.5, 3.6, 3.6 + 1e-2, 3.7, 4.0, 5.0])
    v = np.array([0.1, 0.1, 1.4, 1.4, -0.3, -0.3, -0.3, 0.2, -1.1, -1.0, 0.0, 0.0, 0.2])
    g = 20e-9
    i = g * v
    trace = Trace(t, v, i)
    events = segment(trace, 0.5)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["BiasPhase", "Pulse", "BiasPhase", "BiasPhase", "Pulse", "BiasPhase", "BiasPhase"]
    p1, p2 = events[1], events[4]
    assert p1.amplitude == pytest.approx(1.4) and p1.width == pytest.approx(1e-3)
    assert (p1.start, p1.stop, p1.t_start, p1.t_end) == (2, 4, 2.0, 2.0 + 1e-3)
    assert p2.amplitude == pytest.approx(-1.05) and p2.width == pytest.approx(1e-2)
    phase = events[2]
    assert isinstance(phase, BiasPhase)
    assert phase.level == pytest.approx(-0.3)
    np.testing.assert_allclose(phase.time_s, [2.1, 2.2, 3.0])
    np.testing.assert_allclose(phase.conductance, [g, g, g])
    assert events[3].level == pytest.approx(0.2)  # a level change starts a new phase
    assert len(events[5].time_s) == 0  # 0 V holds the device but reads nothing
    np.testing.assert_allclose(events[6].conductance, [g])


def test_segment_splits_runs_of_opposite_polarity():
    t = np.arange(6) * 1e-3
    v = np.array([0.1, 1.0, 1.0, -1.0, -1.0, 0.1])
    events = segment(Trace(t, v, v * 1e-8), 0.5)
    pulses = [e for e in events if isinstance(e, Pulse)]
    assert [p.amplitude for p in pulses] == [1.0, -1.0]


def test_trace_checks_lengths():
    with pytest.raises(TraceError, match="differ in length"):
        Trace([0.0, 1.0], [0.1], [1e-9, 1e-9])
