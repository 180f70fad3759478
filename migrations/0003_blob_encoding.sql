-- 0003: blobs may be stored compressed. 'zstd': the large object holds one
-- zstd frame of the uploaded bytes (CSV text is stored this way: a third of
-- the space or less, and less for PostgreSQL to write); 'identity': the
-- bytes as uploaded (archives and gzip files, which are compressed already
-- and which libarchive needs to seek in). size and sha256 are always those
-- of the uploaded bytes.
ALTER TABLE blobs ADD COLUMN encoding text NOT NULL DEFAULT 'identity'
    CHECK (encoding IN ('identity', 'zstd'));
