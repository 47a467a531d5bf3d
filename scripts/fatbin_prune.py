#!/usr/bin/env python3
"""Zeroes the GPU code of every architecture but the kept ones in a CUDA shared library.

    scripts/fatbin_prune.py SRC DST --keep 90

A CUDA library carries one cubin per architecture for each of its translation units in its
`.nv_fatbin` section; the CUDA driver loads only the one that matches the GPU. ONNX Runtime's
CUDA provider (1.31.1) holds 219 MB of them for sm_75 to sm_120, 77 MB of them for sm_90
(H100, H200). Zeroing the others keeps every offset and size of the file, so the ELF needs no
rewriting, and the zeros compress to nothing: 284 MB -> 51 MB with xz, small enough to carry
to a machine that cannot download it (scripts/gpu-pack). A library pruned so runs only on the
kept architectures: the driver would find zeros for any other GPU. Fails when the file has no
`.nv_fatbin` section, holds no code for a kept architecture, or ends inside an entry.
"""
import argparse
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50


def sections(data: bytes) -> dict[str, tuple[int, int]]:
    """ELF64 little-endian section name -> (file offset, size)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    heads = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = heads[shstrndx][4]
    out = {}
    for name, _type, _flags, _addr, offset, size in heads:
        end = data.index(b"\0", names + name)
        out[data[names + name:end].decode()] = (offset, size)
    return out


def prune(data: bytearray, keep: set[int]) -> dict[int, int]:
    """Zeroes, in place, the payload of every fatbin entry whose architecture is not in `keep`;
    returns the bytes seen per architecture."""
    if ".nv_fatbin" not in (secs := sections(data)):
        raise ValueError("no .nv_fatbin section: not a CUDA library")
    offset, size = secs[".nv_fatbin"]
    pos, end, seen = offset, offset + size, {}
    while pos + 16 <= end:
        magic, _version, header, body = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # containers are 8-byte aligned, with padding between them
            continue
        entry, stop = pos + header, pos + header + body
        if stop > end:
            raise ValueError(f"fatbin container at {pos:#x} runs past the section")
        while entry < stop:
            _kind, _ver, entry_header, payload = struct.unpack_from("<HHII", data, entry)
            arch = struct.unpack_from("<I", data, entry + 0x1C)[0]
            start = entry + entry_header
            if start + payload > stop:
                raise ValueError(f"fatbin entry at {entry:#x} runs past its container")
            seen[arch] = seen.get(arch, 0) + payload
            if arch not in keep:
                data[start:start + payload] = bytes(payload)
            entry = start + payload
        pos = stop
    if not keep & seen.keys():
        raise ValueError(f"no code for sm_{'/'.join(map(str, sorted(keep)))}; the file has "
                         f"sm_{', sm_'.join(map(str, sorted(seen)))}")
    return seen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--keep", default="90", help="comma-separated SM versions to keep (90: H100, H200)")
    a = p.parse_args()
    keep = {int(v) for v in a.keep.split(",")}
    data = bytearray(open(a.src, "rb").read())
    try:
        seen = prune(data, keep)
    except ValueError as e:
        sys.exit(f"fatbin_prune: {a.src}: {e}")
    open(a.dst, "wb").write(data)
    kept = sum(v for k, v in seen.items() if k in keep)
    print(f"fatbin_prune: kept {kept / 1e6:.1f} MB of sm_{a.keep}, zeroed "
          f"{(sum(seen.values()) - kept) / 1e6:.1f} MB of sm_{', sm_'.join(str(k) for k in sorted(seen) if k not in keep)}")


if __name__ == "__main__":
    main()
