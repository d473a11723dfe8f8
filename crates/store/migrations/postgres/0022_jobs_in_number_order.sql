-- A lifecycle file is applied in number order, whatever order its rows came in (the job runner sorts
-- them first): such a job's byte_offset counts the rows of that order applied, not bytes of the file.
-- Jobs queued before this migration go on in file order. rows_total is the file's data rows, once
-- counted (a number-order job's progress).
ALTER TABLE jobs ADD COLUMN in_number_order INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN rows_total BIGINT;
