//! Sans-IO AWS request building for pixport.
