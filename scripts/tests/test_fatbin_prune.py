"""scripts/fatbin_prune.py on a small ELF file with a hand-made `.nv_fatbin` section."""
import importlib.util
import struct
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("fatbin_prune", Path(__file__).parents[1] / "fatbin_prune.py")
fatbin_prune = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fatbin_prune)


def entry(arch: int, payload: bytes) -> bytes:
    """A fatbin entry: a 64-byte header (kind 2 = cubin, header size, payload size, arch at 0x1C)."""
    head = bytearray(64)
    struct.pack_into("<HHII", head, 0, 2, 0x101, 64, len(payload))
    struct.pack_into("<I", head, 0x1C, arch)
    return bytes(head) + payload


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", fatbin_prune.FATBIN_MAGIC, 1, 16, len(body)) + body


def elf(fatbin: bytes, name: bytes = b".nv_fatbin") -> bytes:
    """An ELF64 file whose sections are: null, .shstrtab, and `name` holding `fatbin`."""
    strtab = b"\0.shstrtab\0" + name + b"\0"
    data_off = 64
    str_off = data_off + len(fatbin)
    sh_off = (str_off + len(strtab) + 7) // 8 * 8
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, sh_off)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)
    body = bytes(header) + fatbin + strtab
    body += bytes(sh_off - len(body))

    def section(name_off: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQ", name_off, 1, 0, 0, offset, size) + bytes(64 - 40)

    return body + bytes(64) + section(1, str_off, len(strtab)) + section(11, data_off, len(fatbin))


def test_keeps_the_chosen_architecture_and_zeroes_the_others():
    # Two containers (one per translation unit), 8-byte padding between them.
    fatbin = container(entry(80, b"A" * 24), entry(90, b"B" * 16)) + bytes(8) + container(entry(90, b"C" * 8), entry(120, b"D" * 32))
    data = bytearray(elf(fatbin))
    before = len(data)
    seen = fatbin_prune.prune(data, {90})
    assert seen == {80: 24, 90: 24, 120: 32}
    assert len(data) == before
    assert b"B" * 16 in data and b"C" * 8 in data
    assert b"A" not in data[64:] and b"D" not in data[64:]


def test_refuses_a_file_without_code_for_the_kept_architecture():
    data = bytearray(elf(container(entry(80, b"A" * 8))))
    with pytest.raises(ValueError, match="no code for sm_90; the file has sm_80"):
        fatbin_prune.prune(data, {90})


def test_refuses_a_file_that_is_not_a_cuda_library():
    with pytest.raises(ValueError, match="no .nv_fatbin section"):
        fatbin_prune.prune(bytearray(elf(b"\0" * 16, name=b".rodata")), {90})
    with pytest.raises(ValueError, match="not a 64-bit little-endian ELF"):
        fatbin_prune.prune(bytearray(b"MZ" + bytes(100)), {90})


def test_refuses_an_entry_that_runs_past_its_container():
    bad = bytearray(container(entry(90, b"B" * 16)))
    struct.pack_into("<I", bad, 16 + 4 + 4, 1000)  # the entry now claims 1000 payload bytes
    with pytest.raises(ValueError, match="runs past its container"):
        fatbin_prune.prune(bytearray(elf(bytes(bad))), {90})
