"""The board shell's protocol engine (hwgen.shell.link) in the Amaranth simulator, against the
protocol's reference device (hwgen.shell.protocol.DeviceModel): line bytes in with random gaps,
tx taken with random stalls, a model core on core_in/core_out with random back-pressure and
latency.  The answers must be the model's (RESULTs in order, NAKs and INFO_REPLYs in order), the
tx bytes exactly a concatenation of protocol.packet(...) strings, and the core must see exactly
the good frames' words."""

import random
import zlib
from collections import deque

import pytest
from amaranth.back import rtlil
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwgen.shell.link import ANSWER_DEPTH, Link
from hwgen.shell.protocol import (DATA, ESC, FLAG, INFO, INFO_REPLY, NAK, NAK_BUSY, RESULT, Decoder, DeviceModel,
                                  LinkParams, bytes_to_words, crc16, packet, words_to_bytes)

ERR = ("rx_error",)             # a line item: one rx_error pulse


def _rng(request):
    seed = zlib.crc32(request.node.name.encode()) % 10**6
    print(f"seed {seed}")
    return random.Random(seed)


def compute_for(p):
    """The model core: out word 0 the sum of the frame's words, then shifted copies of them."""
    mask = (1 << p.out_bits) - 1

    def compute(words):
        return [(sum(words) if k == 0 else words[(k - 1) % len(words)] + k) & mask for k in range(p.out_words)]
    return compute


def data_packet(p, seq, words):
    return packet(DATA, seq, words_to_bytes(words, p.in_word_bytes))


def random_words(p, rng):
    """A frame's words, some of whose bytes are FLAG and ESC (stuffed on the line)."""
    raw = bytearray(rng.randrange(256) for _ in range(p.in_bytes))
    for _ in range(min(2, p.in_bytes)):
        raw[rng.randrange(p.in_bytes)] = rng.choice((FLAG, ESC))
    return bytes_to_words(raw, p.in_word_bytes)


def run_link(p, items, rng, *, pace=True, answers=None, stall_core=lambda state: False, tx_stall=0.3,
             hold_tx=lambda state: False, max_cycles=20000):
    """Drive ``items`` (line byte strings, ERR, ("wait", cycles), or callables of the state run
    between them) into a Link(p); return the tx bytes, the frames the core saw, and the pulse
    counts.  With ``pace`` the sender waits, as a host does, to keep fewer than buffer_frames
    results and fewer than ANSWER_DEPTH - 1 answers outstanding (as the reference model predicts
    them); the run ends when the model's answers (or ``answers``) have come, and 200 cycles more."""
    dut = Link(p)
    compute = compute_for(p)
    state = {"cycle": 0, "done": False, "results": 0, "answers": 0}
    tx_bytes, frames, pulses = bytearray(), [], {"frame_done": 0, "link_error": 0}
    out_q = deque()                                   # (cycle it is ready, word)
    expected = DeviceModel(p, compute)
    dec = Decoder()

    async def drive(ctx):
        exp_res = exp_ans = 0
        for item in items:
            while pace and (exp_res - state["results"] >= p.buffer_frames
                            or exp_ans - state["answers"] >= ANSWER_DEPTH - 1) and state["cycle"] < max_cycles:
                await ctx.tick()
            if callable(item):
                item(state)
                continue
            if isinstance(item, tuple) and item[0] == "wait":
                for _ in range(item[1]):
                    await ctx.tick()
                continue
            if item == ERR:
                ctx.set(dut.rx_error, 1)
                await ctx.tick()
                ctx.set(dut.rx_error, 0)
                expected.line_error()
                continue
            for byte in item:
                for _ in range(rng.choice((0, 0, 1, 3))):
                    await ctx.tick()
                ctx.set(dut.rx.payload, byte)
                ctx.set(dut.rx.valid, 1)
                _, _, ready = await ctx.tick().sample(dut.rx.ready)
                assert ready
                ctx.set(dut.rx.valid, 0)
            for kind, _, _ in Decoder().feed(expected.feed(item)):     # one answer a packet
                exp_res, exp_ans = exp_res + (kind == RESULT), exp_ans + (kind != RESULT)
        total = exp_res + exp_ans if answers is None else answers
        while state["cycle"] < max_cycles and state["results"] + state["answers"] < total:
            await ctx.tick()
        for _ in range(200):                          # nothing more comes
            await ctx.tick()
        state["done"] = True

    async def take(ctx):
        held = None
        while not state["done"]:
            ready = int(not hold_tx(state) and rng.random() >= tx_stall)
            ctx.set(dut.tx.ready, ready)
            _, _, valid, byte, done, err = await ctx.tick().sample(dut.tx.valid, dut.tx.payload, dut.frame_done,
                                                                  dut.link_error)
            state["cycle"] += 1
            if held is not None:                     # a stream's offer stands until taken
                assert valid and byte == held
            held = byte if valid and not ready else None
            pulses["frame_done"] += done
            pulses["link_error"] += err
            if valid and ready:
                tx_bytes.append(byte)
                for kind, _, _ in dec.feed(bytes((byte,))):
                    state["results" if kind == RESULT else "answers"] += 1

    async def core_in(ctx):
        words = []
        while not state["done"]:
            ready = int(not stall_core(state) and rng.random() < 0.7)
            ctx.set(dut.core_in.ready, ready)
            _, _, valid, word = await ctx.tick().sample(dut.core_in.valid, dut.core_in.payload)
            if valid and ready:
                words.append(word)
                if len(words) == p.in_words:
                    frames.append(words)
                    at = state["cycle"] + rng.choice((0, 1, 5, 20))
                    out_q.extend((at, w) for w in compute(words))
                    words = []

    async def core_out(ctx):
        word = None
        while not state["done"]:
            if word is None and out_q and out_q[0][0] <= state["cycle"] and rng.random() < 0.8:
                word = out_q.popleft()[1]
            ctx.set(dut.core_out.valid, word is not None)
            ctx.set(dut.core_out.payload, word or 0)
            _, _, ready = await ctx.tick().sample(dut.core_out.ready)
            if ready and word is not None:
                word = None

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (drive, take, core_in, core_out):
        sim.add_testbench(bench)
    sim.run()
    assert state["cycle"] < max_cycles, "the link stopped answering"
    return bytes(tx_bytes), frames, pulses


def decode_exact(data):
    """The packets in tx bytes, which must be nothing but whole protocol.packet(...) strings."""
    dec = Decoder()
    pkts = dec.feed(data)
    assert dec.errors == 0
    assert b"".join(packet(k, s, pl) for k, s, pl in pkts) == data
    return pkts


def model_answers(p, items):
    model, good = DeviceModel(p, None), []

    def compute(words):
        good.append(words)
        return compute_for(p)(words)
    model.compute = compute
    out = bytearray()
    for item in items:
        if callable(item) or isinstance(item, tuple) and item[0] == "wait":
            continue
        if item == ERR:
            model.line_error()
        else:
            out += model.feed(item)
    return decode_exact(bytes(out)), good


def check(p, items, rng, **kw):
    got_bytes, frames, pulses = run_link(p, items, rng, **kw)
    got = decode_exact(got_bytes)
    want, good = model_answers(p, items)
    assert [x for x in got if x[0] == RESULT] == [x for x in want if x[0] == RESULT]
    assert [x for x in got if x[0] != RESULT] == [x for x in want if x[0] != RESULT]
    assert frames == good                               # exactly the good frames reached the core
    assert pulses == {"frame_done": sum(x[0] == RESULT for x in got), "link_error": sum(x[0] == NAK for x in got)}
    return got_bytes, got


GRID = [LinkParams(8, 4, 8, 1, buffer_frames=1), LinkParams(16, 3, 32, 2, buffer_frames=2),
        LinkParams(24, 2, 8, 5, buffer_frames=2), LinkParams(8, 1, 32, 1, buffer_frames=2),
        LinkParams(24, 1, 32, 3, buffer_frames=1, design_id=0x7E7D1234, clock_hz=12_000_000, baud=3_000_000)]


def _id(p):
    return f"i{p.in_bits}x{p.in_words}-o{p.out_bits}x{p.out_words}-b{p.buffer_frames}"


@pytest.mark.parametrize("p", GRID, ids=_id)
def test_good_frames_and_info(p, request):
    """Good frames back to back (payload bytes FLAG and ESC stuffed both ways), an INFO request."""
    rng = _rng(request)
    items = [data_packet(p, seq, random_words(p, rng)) for seq in range(6)]
    items.insert(3, packet(INFO, 0x7D))
    got_bytes, got = check(p, items, rng)
    assert sorted(s for k, s, _ in got if k == RESULT) == list(range(6))
    assert (INFO_REPLY, 0x7D, p.info_payload()) in got


def _crc_has_flag(kind, seq, payload):
    return FLAG in crc16(bytes((kind, seq)) + payload).to_bytes(2, "big")


@pytest.mark.parametrize("p", [GRID[0], GRID[2]], ids=_id)
def test_crc_byte_is_flag(p, request):
    """A DATA packet and a RESULT packet whose CRC has a FLAG byte (stuffed on the line)."""
    rng = _rng(request)
    words = random_words(p, rng)
    compute = compute_for(p)
    # seq alone spans only 256 CRCs: vary the first word's low byte too
    seq_in, w_in = next((s, [(words[0] & ~0xFF) | v, *words[1:]]) for v in range(256) for s in range(256)
                        if _crc_has_flag(DATA, s, words_to_bytes([(words[0] & ~0xFF) | v, *words[1:]], p.in_word_bytes)))
    seq_out, w_out = next((s, [(words[0] & ~0xFF) | v, *words[1:]]) for v in range(256) for s in range(256)
                          if _crc_has_flag(RESULT, s, words_to_bytes(compute([(words[0] & ~0xFF) | v, *words[1:]]),
                                                                     p.out_word_bytes)))
    items = [data_packet(p, seq_in, w_in), data_packet(p, seq_out, w_out)]
    got_bytes, got = check(p, items, rng)
    assert [s for _, s, _ in got] == [seq_in, seq_out]
    stuffed_flag = bytes((ESC, FLAG ^ 0x20))
    assert got_bytes.endswith(stuffed_flag + b"\x7e") or stuffed_flag in got_bytes[-4:]
    assert stuffed_flag in items[0][-5:]


def corrupted(line):
    """A packet's line bytes with one bit of a payload or CRC byte flipped, no FLAG or ESC made or unmade."""
    line = bytearray(line)
    i = next(i for i in range(3, len(line) - 1) if line[i - 1] != ESC and not {line[i], line[i] ^ 1} & {FLAG, ESC})
    line[i] ^= 1
    return bytes(line)


def faults(p, rng):
    """Line items: every fault the protocol names, between good frames."""
    seq = iter(range(10, 256))

    def good():
        return data_packet(p, next(seq), random_words(p, rng))

    corrupt = corrupted(good())
    dropped = good()
    dropped = dropped[:4] + dropped[5:]
    merged_a, merged_b = good(), good()
    half = good()
    return [
        bytes((0x00, 0x55, ESC, 0x33)),               # noise before the first FLAG: hunted through
        good(),
        bytes(corrupt),                               # NAK_CRC
        good(),
        dropped,                                      # NAK_LENGTH (or CRC), in step again at the next FLAG
        merged_a[:-1] + merged_b[1:],                 # a dropped FLAG: two packets, one NAK
        packet(0x05, next(seq), b"abc"),              # NAK_TYPE
        packet(INFO, next(seq)),                      # INFO_REPLY
        packet(INFO, next(seq), b"x"),                # NAK_LENGTH
        packet(DATA, next(seq), bytes(p.in_bytes + 1)),                  # NAK_LENGTH, long
        packet(DATA, next(seq), bytes(range(2 * p.in_bytes + 9))),      # NAK_LENGTH, the byte count saturated
        half[:len(half) // 2], ERR, half[len(half) // 2:],               # NAK_LINE, seq as received
        good(),
        ERR,                                          # between packets: NAK_LINE seq 0 at the next FLAG
        good(),
        bytes((FLAG, DATA, FLAG)),                    # short: NAK_LENGTH seq 0
        bytes((FLAG, DATA, 0x42, 0x11, 0x22, ESC, FLAG)),                 # ESC before FLAG: NAK_LENGTH
        packet(INFO, 0x43)[:-1] + bytes((ESC, FLAG)),  # a good INFO request but for the ESC: NAK_LENGTH
        good(),
        bytes((FLAG, FLAG, FLAG)),                    # idle: no answer
        good(),
    ]


@pytest.mark.parametrize("p", GRID, ids=_id)
def test_faults(p, request):
    rng = _rng(request)
    items = faults(p, rng)
    _, got = check(p, items, rng)
    codes = [pl[0] for k, _, pl in got if k == NAK]
    assert len(codes) == 12 and sum(k == RESULT for k, _, _ in got) == 6


def random_traffic(p, rng, n):
    """``n`` random line items: mostly good frames, the rest any fault, random bytes damaged."""
    items = []
    for _ in range(n):
        seq = rng.randrange(256)
        good = data_packet(p, seq, random_words(p, rng))
        fault = rng.choice(["good"] * 6 + ["flip", "drop", "insert", "merge", "info", "type", "err", "short"])
        if fault == "good":
            items.append(good)
        elif fault in ("flip", "drop", "insert"):
            line = bytearray(good)
            i = rng.randrange(1, len(line) - 1)
            if fault == "flip":
                line[i] ^= 1 << rng.randrange(8)
            elif fault == "drop":
                del line[i]
            else:
                line.insert(i, rng.choice((FLAG, ESC, rng.randrange(256))))
            items.append(bytes(line))
        elif fault == "merge":
            items.append(good[:-1] + data_packet(p, seq ^ 1, random_words(p, rng))[1:])
        elif fault == "info":
            items.append(packet(INFO, seq, b"" if rng.random() < 0.7 else b"?"))
        elif fault == "type":
            items.append(packet(rng.choice((0, 3, RESULT, 0xFF)), seq, bytes(rng.randrange(4))))
        elif fault == "err":
            i = rng.randrange(len(good) + 1)
            items += [good[:i], ERR, good[i:]]
        else:
            short = bytes(rng.choice((DATA, INFO, ESC, 0x00)) for _ in range(rng.randrange(1, 4)))
            items.append(bytes((FLAG,)) + short + bytes((FLAG,)))
    return items


@pytest.mark.parametrize("p", GRID, ids=_id)
def test_random_traffic(p, request):
    """Random good and damaged packets (bits flipped, bytes dropped or inserted, FLAGs lost, line
    errors anywhere), answered as the reference device answers them."""
    rng = _rng(request)
    check(p, random_traffic(p, rng, 30), rng, max_cycles=40000)


@pytest.mark.parametrize("p", [GRID[0], GRID[1]], ids=_id)
def test_busy(p, request):
    """The core stalled while more frames than buffer_frames arrive: the overflowing ones are
    NAK_BUSY (nothing of them reaches the core), the accepted ones come back right; then more
    frames, with the core running, are all accepted."""
    rng = _rng(request)
    extra = 2
    stalled = [data_packet(p, s, random_words(p, rng)) for s in range(p.buffer_frames + extra)]
    later = [data_packet(p, 100 + s, random_words(p, rng)) for s in range(3)]
    items = [lambda st: st.update(stall=True), *stalled, ("wait", 100), lambda st: st.update(stall=False),
             ("wait", 200), *later]
    got_bytes, frames, _ = run_link(p, items, rng, pace=False, answers=len(stalled) + len(later),
                                    stall_core=lambda st: st.get("stall", False))
    got = decode_exact(got_bytes)
    busy = [s for k, s, pl in got if k == NAK and pl == bytes((NAK_BUSY,))]
    assert busy == list(range(p.buffer_frames, p.buffer_frames + extra))
    accepted = [x for i, x in enumerate(stalled) if i < p.buffer_frames] + later
    want, good = model_answers(p, accepted)
    assert [x for x in got if x[0] == RESULT] == want
    assert frames == good
    assert len(got) == len(stalled) + len(later)


@pytest.mark.parametrize("p", [GRID[1]], ids=_id)
def test_slow_uart_holds_the_core(p, request):
    """tx taken one cycle in ten: the core's output words wait (core_out.ready low), none is lost."""
    rng = _rng(request)
    items = [data_packet(p, seq, random_words(p, rng)) for seq in range(4)]
    check(p, items, rng, tx_stall=0.9, max_cycles=40000)


def test_answer_fifo_full_drops_answers(request):
    """INFO requests while tx is held: the one being sent and ANSWER_DEPTH queued are answered,
    the rest dropped (the host times out and resends); the link works on afterwards."""
    p = GRID[3]
    rng = _rng(request)
    items = [lambda st: st.update(hold=True), *(packet(INFO, s) for s in range(8)), ("wait", 50),
             lambda st: st.update(hold=False), data_packet(p, 9, random_words(p, rng))]
    got_bytes, frames, _ = run_link(p, items, rng, pace=False, answers=ANSWER_DEPTH + 2,
                                    hold_tx=lambda st: st.get("hold", False))
    got = decode_exact(got_bytes)
    assert [(k, s) for k, s, _ in got] == [(INFO_REPLY, s) for s in range(ANSWER_DEPTH + 1)] + [(RESULT, 9)]
    assert len(frames) == 1


@pytest.mark.parametrize("p", [GRID[1], GRID[3]], ids=_id)
def test_unpaced_with_core_stalls(p, request):
    """A host that does not wait, a core that stalls now and then: frames finding the buffer full
    are NAK_BUSY, every other packet is answered as the reference answers it, and each accepted
    frame reaches the core once and comes back once, in order."""
    rng = _rng(request)
    items = []
    for seq in range(24):                              # unique seqs: the BUSY ones can be told apart
        line = data_packet(p, seq, random_words(p, rng))
        items.append(corrupted(line) if rng.random() < 0.2 else line)
    stalls = {c for start in range(0, 20000, 300) for c in range(start, start + rng.randrange(300))}
    got_bytes, frames, _ = run_link(p, items, rng, pace=False, answers=len(items), max_cycles=20000,
                                    stall_core=lambda st: st["cycle"] in stalls)
    got = decode_exact(got_bytes)
    busy = {s for k, s, pl in got if k == NAK and pl == bytes((NAK_BUSY,))}
    assert busy                                        # the test exercises BUSY
    want, good = model_answers(p, [x for x in items if x[2] not in busy])
    assert [x for x in got if x[0] == RESULT] == [x for x in want if x[0] == RESULT]
    assert [x for x in got if x[0] != RESULT and x[1] not in busy] == [x for x in want if x[0] != RESULT]
    assert frames == good
    assert len(got) == len(items)


def test_ports_and_buffer():
    """The ports the board top connects, and the frame buffer: one Memory of buffer_frames ×
    in_words words rounded up to a power of two."""
    p = LinkParams(24, 3, 32, 2, buffer_frames=2)
    link = Link(p)
    assert dict(link.signature.members.items()) == {
        "rx": In(stream.Signature(8)), "rx_error": In(1), "tx": Out(stream.Signature(8)),
        "core_in": Out(stream.Signature(24)), "core_out": In(stream.Signature(32)),
        "frame_done": Out(1), "link_error": Out(1)}
    text = rtlil.convert(link)
    assert "memory width 24 size 8 \\buffer" in text


def test_link_params_checked():
    with pytest.raises(TypeError) as e:
        Link({"in_bits": 8})
    assert str(e.value) == "link: params must be a hwgen.shell.protocol.LinkParams, not {'in_bits': 8}"
