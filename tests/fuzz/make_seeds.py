#!/usr/bin/env python3
"""make_seeds.py - write small seed inputs for the libFuzzer targets.

Called by tests/fuzz/run.sh as: make_seeds.py REPO_ROOT CORPUS_ROOT
Writes CORPUS_ROOT/{csv,ingest,imageset}/ (modelfile seeds come from
bin/podium-train, made by run.sh). Each seed starts with the target's
selector byte (see the header comment of each fuzz_<name>.c). Standard
library only; everything is made in memory, nothing here is committed.
"""
import base64
import gzip
import io
import os
import sys
import tarfile
import zipfile

# A 4x3 RGB JPEG (quality 50) made with libjpeg; small enough to inline.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkz"
    "ODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAADAAQDASIA"
    "AhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQA"
    "AAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3"
    "ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWm"
    "p6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEA"
    "AwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSEx"
    "BhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElK"
    "U1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3"
    "uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwC54X/5"
    "AkNFFFbGJ//Z")


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tar_bytes(files, compress=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w",
                      format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            if data is None:
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                t.addfile(info)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in files:
            z.writestr(name, data)
    return buf.getvalue()


def idx_files(n=4, rows=2, cols=3):
    images = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + rows.to_bytes(4, "big") + \
        cols.to_bytes(4, "big") + bytes(range(n * rows * cols))
    labels = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(i % 3 for i in range(n))
    return images, labels


def main():
    root, out = sys.argv[1], sys.argv[2]
    tab = os.path.join(root, "tests", "data", "tabular")

    # csv (fuzz_csv: selector byte then CSV)
    for name in sorted(os.listdir(tab)):
        if name.endswith(".csv"):
            with open(os.path.join(tab, name), "rb") as f:
                data = f.read(3000)
            write(os.path.join(out, "csv", name), b"\x10" + data)

    # ingest: plain CSV as csv/any, gzip'd as gzip/any, chunked variously
    for i, name in enumerate(("iris.csv", "Servo.csv", "HouseVotes84.csv", "Zoo.csv")):
        with open(os.path.join(tab, name), "rb") as f:
            data = f.read(2500)
        write(os.path.join(out, "ingest", name), bytes([0x01 | (i << 5)]) + data)
        write(os.path.join(out, "ingest", name + ".gz"),
              bytes([0x02 | (i << 5) | 0x10]) + gzip.compress(data, mtime=0))
    write(os.path.join(out, "ingest", "semicolon.csv"), b"\x90a;b;c\n1;2;3\n\"x;\"\"y\";4;5\n")
    write(os.path.join(out, "ingest", "two-members.gz"),
          b"\xa2" + gzip.compress(b"a,b\n1,", mtime=0) + gzip.compress(b"2\n3,4\n", mtime=0))
    write(os.path.join(out, "ingest", "tiny.tar.gz"),
          b"\xb0" + tar_bytes([("c/x.csv", b"a,b\n1,2\n")], compress=True))
    write(os.path.join(out, "ingest", "tiny.tar"), b"\xc4" + tar_bytes([("c/x.csv", b"a,b\n")]))
    write(os.path.join(out, "ingest", "tiny.zip"), b"\xd3" + zip_bytes([("x.csv", b"a,b\n")]))

    # imageset: PNGs from the digits archive, one JPEG, IDX
    with zipfile.ZipFile(os.path.join(root, "tests", "data", "images", "digits8x8.zip")) as z:
        pngs = [(n, z.read(n)) for n in sorted(z.namelist())
                if n.endswith(".png")][:400:97]
    img = os.path.join(out, "imageset")
    folders = pngs + [("7/photo.jpg", JPEG), ("7/notes.txt", b"hello"),
                      ("__MACOSX/7/._photo.jpg", b"x"), ("root.png", pngs[0][1])]
    tree = [("train/", None), ("train/3/", None)] + [("train/" + n, d) for n, d in folders]
    for sel, ext in ((0x71, "seek"), (0x70, "stream"), (0x23, "small")):
        write(os.path.join(img, "folders.zip." + ext), bytes([sel]) + zip_bytes(folders))
        write(os.path.join(img, "folders.tar." + ext), bytes([sel]) + tar_bytes(tree))
        write(os.path.join(img, "folders.tar.gz." + ext), bytes([sel]) + tar_bytes(tree, True))
    write(os.path.join(img, "stored.zip"), b"\x81" + zip_bytes(folders, zipfile.ZIP_STORED))
    images, labels = idx_files()
    write(os.path.join(img, "idx.tar"), b"\x61" +
          tar_bytes([("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)]))
    write(os.path.join(img, "idx-gz.zip"), b"\x71" +
          zip_bytes([("a/train-images-idx3-ubyte.gz", gzip.compress(images, mtime=0)),
                     ("a/train-labels-idx1-ubyte.gz", gzip.compress(labels, mtime=0))]))
    write(os.path.join(img, "idx.tar.gz"), b"\x50" +
          tar_bytes([("i", images), ("l", labels)], compress=True))
    write(os.path.join(img, "evil-path.tar"), b"\x71" + tar_bytes([("../x/a.png", pngs[0][1])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
