"""The Virtual PC-style management API: ``VirtualPC`` → ``VirtualMachine`` → ``DVDDrive``,
the HRESULT values and the COM facade (see docs/management-api.md)."""
