extension RegexProgram {
    /// Whether the program matches all of `input`. A Pike VM (Thompson's simulation): the
    /// threads alive at a position each sit at a distinct instruction, so a byte costs at
    /// most one step per instruction, O(input × program) in all, with no backtracking to
    /// blow up on `(a+)+`. The scratch space (marks and a stack, one slot per instruction;
    /// two thread lists, one slot per consuming instruction) is a temporary allocation,
    /// on the stack for programs of a usual size, and is never shared: the regex can be
    /// matched from every event loop at once.
    func wholeMatches(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = instructions.count
        let lists = threadCapacity
        return instructions.withUnsafeBufferPointer { program in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2 * count + 2 * lists) { scratch in
                let base = scratch.baseAddress!
                base.initialize(repeating: 0, count: count)
                var vm = PikeVM(program: program, marks: base, stack: base + count, inputCount: input.count)
                var current = base + 2 * count
                var next = current + lists
                var currentCount = vm.addClosure(of: 0, at: 0, into: current, count: 0)
                for position in 0..<input.count {
                    if currentCount == 0 { return false }
                    let byte = input[position]
                    vm.nextPosition()
                    var nextCount = 0
                    for thread in 0..<currentCount {
                        let pc = Int(current[thread])
                        switch program[pc] {
                        case .byte(let expected) where expected == byte: break
                        case .set(let set) where set.contains(byte): break
                        default: continue
                        }
                        nextCount = vm.addClosure(of: pc + 1, at: position + 1, into: next, count: nextCount)
                    }
                    swap(&current, &next)
                    currentCount = nextCount
                }
                // The program ends in `.match`.
                return vm.wasReached(count - 1)
            }
        }
    }
}

/// The state of one match over borrowed scratch memory.
private struct PikeVM {
    let program: UnsafeBufferPointer<RegexInstruction>
    /// `marks[pc] == generation`: `pc` was reached at the current position. A new
    /// generation per position clears every mark at once.
    let marks: UnsafeMutablePointer<UInt32>
    /// Depth-first stack of the epsilon closure; every entry is a newly marked
    /// instruction, so it never holds more than the program's size.
    let stack: UnsafeMutablePointer<UInt32>
    let inputCount: Int
    private var generation: UInt32 = 1

    init(
        program: UnsafeBufferPointer<RegexInstruction>, marks: UnsafeMutablePointer<UInt32>,
        stack: UnsafeMutablePointer<UInt32>, inputCount: Int
    ) {
        self.program = program
        self.marks = marks
        self.stack = stack
        self.inputCount = inputCount
    }

    mutating func nextPosition() {
        if generation == .max {
            // Only after four billion bytes of input; start the marks over.
            marks.update(repeating: 0, count: program.count)
            generation = 0
        }
        generation += 1
    }

    func wasReached(_ pc: Int) -> Bool { marks[pc] == generation }

    /// Appends to `list` the consuming instructions (and `.match`) reachable from `start`
    /// at `position` by epsilon moves not taken yet at this position; returns the new count.
    func addClosure(of start: Int, at position: Int, into list: UnsafeMutablePointer<UInt32>, count: Int) -> Int {
        var count = count
        var depth = 0
        push(start, &depth)
        while depth > 0 {
            depth -= 1
            let pc = Int(stack[depth])
            switch program[pc] {
            case .byte, .set, .match:
                list[count] = UInt32(truncatingIfNeeded: pc)
                count += 1
            case .jump(let target):
                push(target, &depth)
            case .split(let first, let second):
                push(second, &depth)
                push(first, &depth)
            case .assertStart:
                if position == 0 { push(pc + 1, &depth) }
            case .assertEnd:
                if position == inputCount { push(pc + 1, &depth) }
            }
        }
        return count
    }

    @inline(__always)
    private func push(_ pc: Int, _ depth: inout Int) {
        guard marks[pc] != generation else { return }
        marks[pc] = generation
        stack[depth] = UInt32(truncatingIfNeeded: pc)
        depth += 1
    }
}
