"""The board shell's UART (hwgen.shell.uart) in the Amaranth simulator, against its reference
model: the transmitter's line waveform cycle for cycle, the receiver on reference waveforms (idle
gaps, baud rates off by up to 2 %, glitches, low stop bits, a slow reader), and the two in loopback."""

import random
import zlib

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hwgen.errors import HwgenError
from hwgen.shell.uart import UARTRx, UARTTx, decode, divisor_for, line

DIVISORS = [4, 5, 16, 33]


def _rng(request):
    seed = zlib.crc32(request.node.name.encode()) % 10**6
    print(f"seed {seed}")
    return random.Random(seed)


def run(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for b in benches:
        sim.add_testbench(b)
    sim.run()


@pytest.mark.parametrize("divisor", DIVISORS)
def test_tx_waveform_is_the_reference_line(divisor, request):
    rng = _rng(request)
    data = bytes(rng.randrange(256) for _ in range(6)) + b"\x00\xff"
    dut = UARTTx(divisor)
    levels = []

    async def bench(ctx):
        for byte in data:                          # offer each byte; it is taken when the line is idle
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            while True:
                _, _, ready, tx = await ctx.tick().sample(dut.i.ready, dut.tx)
                levels.append(tx)
                if ready:
                    break
            ctx.set(dut.i.valid, 0)
        for _ in range(12 * divisor):
            _, _, tx = await ctx.tick().sample(dut.tx)
            levels.append(tx)

    run(dut, bench)
    first = levels.index(0)
    assert all(levels[:first])                    # idle high before the first start bit
    # back to back, one idle cycle passes between a stop bit and the next start bit
    want = line(data, divisor, gaps=[0] + [1] * (len(data) - 1))
    assert levels[first:first + len(want)] == want
    assert all(levels[first + len(want):])
    assert decode(levels, divisor) == (data, 0)


def _rx_collect(dut, levels, stall=lambda t: False):
    got, framing, overrun = [], [], []

    async def drive(ctx):
        for v in levels:
            ctx.set(dut.rx, v)
            await ctx.tick()

    async def take(ctx):
        for t in range(len(levels) + 8):
            ready = 0 if stall(t) else 1
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, fe, ov = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.framing_error,
                                                                   dut.overrun)
            if valid and ready:
                got.append(payload)
            if fe:
                framing.append(t)
            if ov:
                overrun.append(t)

    run(dut, drive, take)
    return bytes(got), framing, overrun


@pytest.mark.parametrize("divisor", DIVISORS)
@pytest.mark.parametrize("skew", [-0.02, 0.0, 0.02])
def test_rx_reads_reference_lines(divisor, skew, request):
    """Bytes with random idle gaps, sent at up to 2 % off the receiver's baud rate."""
    rng = _rng(request)
    data = bytes(rng.randrange(256) for _ in range(8)) + b"\x00\xff\x55"
    gaps = [rng.choice([0, 0, 1, 3, 2 * divisor]) for _ in data]
    # the sender's bit period differs by `skew`: resample a fine waveform
    fine = line(data, 100, [g * 100 for g in gaps])
    step = 100 / (divisor * (1 + skew))
    levels = [1] * 5 + [fine[int(k * step)] for k in range(int(len(fine) / step))] + [1] * (2 * divisor)
    got, framing, overrun = _rx_collect(UARTRx(divisor), levels)
    assert (got, framing, overrun) == (data, [], [])


def test_rx_framing_error_glitch_and_overrun():
    div = 8
    good = line(b"\x3c", div)
    low_stop = line(b"\xa5", div)
    low_stop[-div:] = [0] * div                    # the stop bit low: a framing error, byte dropped
    glitch = [0] * (div // 2 - 2)                  # shorter than half a bit: ignored
    levels = [1] * 4 + good + [1] * 3 + low_stop + [1] * (2 * div) + glitch + [1] * (2 * div) + line(b"\x81", div)
    got, framing, overrun = _rx_collect(UARTRx(div), levels + [1] * 4)
    assert got == b"\x3c\x81" and len(framing) == 1 and overrun == []
    # a reader that takes nothing for a while: the second byte overruns the first and is dropped
    levels = [1] * 4 + line(b"\x11\x22\x33", div, gaps=[0, 2, 2]) + [1] * 4
    stop_reading_until = 4 + 2 * 10 * div + 10
    got, framing, overrun = _rx_collect(UARTRx(div), levels, stall=lambda t: t < stop_reading_until)
    assert got == b"\x11\x33" and framing == [] and len(overrun) == 1


@pytest.mark.parametrize("divisor", [4, 7])
def test_loopback(divisor, request):
    rng = _rng(request)
    data = bytes(rng.randrange(256) for _ in range(10))
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def send(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        for _ in range(len(data) * 11 * divisor + 50):
            _, _, valid, payload = await ctx.tick().sample(rx.o.valid, rx.o.payload)
            if valid:
                got.append(payload)

    run(m, send, receive)
    assert bytes(got) == data


def test_divisor_for():
    assert divisor_for(100e6, 3e6) == 33                # 3.03 Mbaud, 1 % off
    assert divisor_for(12e6, 115200) == 104
    assert divisor_for(12e6, 3e6) == 4                  # the iCEBreaker's 12 MHz at 3 Mbaud: just enough
    with pytest.raises(HwgenError) as e:
        divisor_for(2.5e6, 1e6)
    assert str(e.value) == ("uart: 1,000,000 baud at 2.5 MHz is 2.50 clock cycles per bit; accepted: at least 4 "
                            "(a slower baud rate or a faster clock)")
    with pytest.raises(HwgenError) as e:
        divisor_for(5.5e6, 1e6)
    assert str(e.value) == ("uart: 1,000,000 baud at 5.5 MHz: the nearest divisor 6 gives 916,667 baud, 8.3% off; "
                            "accepted: within 2 %")
    with pytest.raises(HwgenError) as e:
        UARTTx(3)
    assert str(e.value) == "uart: divisor must be an integer ≥ 4 (clock cycles per bit), not 3"
