"""Processes beside the jobs that the project starts and stops: the shared metastore, the SQL
(Thrift JDBC/ODBC) server, a Spark standalone cluster on loopback."""
