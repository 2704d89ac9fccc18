//! A latency as results carry it: percentiles in milliseconds with their sample count, and
//! the HDR histogram itself, so that baselines compare distributions and reports merge them.
//! Defined once in [`mock_ld::hdr`], whose delivery and lateness histograms the harness reads
//! in the same shape.

pub use mock_ld::hdr::{empty_histogram, growing, HistogramError, LatencySummary, MAX_MICROS};
