// Declarations-only stand-in (see register/op_def_registry.h): nothing of it is used.
