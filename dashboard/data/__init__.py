"""The dashboard's reads: plain functions of a connection (no Streamlit), so the benchmark
and the tests can time and check them without rendering anything."""
