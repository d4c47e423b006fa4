package engine

// RecordSwitch is recordSwitch, for the simulator (package engine_test), which carries out
// TakeOver as Agent.takeOver does.
var RecordSwitch = recordSwitch

// SettleHandOver is settleHandOver, for the simulator, which carries out HandOver as
// Agent.handOverNow does.
var SettleHandOver = settleHandOver
