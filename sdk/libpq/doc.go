// Package libpq holds the PostgreSQL conventions that pgimaged and its plugins share, so that
// each is read one way: a connection string read without its password ([Parse]), a value quoted
// for one ([Quote]), a keyword set in one ([With]), the pgpass file pgimaged hands over named in
// one ([WithPassfile]), and the server version `postgres --version` prints ([BinVersion],
// [ParseServerVersion]).
package libpq
