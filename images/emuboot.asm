; emuboot.asm - boot sector for the floppy- and hard-disk-emulation test discs.
;
; Loaded by the firmware at 0000:7C00 from an El Torito emulated drive (El
; Torito 1.0 section 3: floppy = drive 00h, hard disk = drive 80h) and entered
; with DL = that drive.  It prints which drive it booted from and what
; INT 13h AH=08h reports for it ("GEOMETRY CX=cccc DX=dddd BL=bb"), reads
; CHS (0,0,2) and CHS (1,1,1) with INT 13h AH=02h and prints the
; NUL-terminated text at the start of each sector (images/emulation.py
; writes it there), then halts.  The same 446 bytes of code serve as a floppy boot sector and
; as a master boot record (the partition table is filled in by the builder).
;
; Build: nasm -f bin -o images/emuboot.bin images/emuboot.asm

bits 16
org 0x7C00

start:
        jmp     short main
        nop
        times   0x3E-($-$$) db 0        ; room for a BIOS parameter block
main:
        cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7C00
        sti
        cld
        mov     [drive], dl
        mov     si, msg_booted
        call    print
        mov     al, [drive]
        call    print_hex8
        mov     si, msg_crlf
        call    print

        xor     bx, bx                  ; INT 13h AH=08h: drive parameters
        xor     di, di
        mov     dl, [drive]
        mov     ah, 0x08
        push    es
        int     0x13
        pop     es
        jc      .nogeo
        push    bx
        push    dx
        push    cx
        mov     si, msg_geo_cx
        call    print
        pop     ax
        call    print_hex16
        mov     si, msg_geo_dx
        call    print
        pop     ax
        call    print_hex16
        mov     si, msg_geo_bl
        call    print
        pop     ax
        call    print_hex8
        mov     si, msg_crlf
        call    print
        jmp     .reads
.nogeo:
        mov     si, msg_geo_error
        call    print
.reads:
        mov     cx, 0x0002              ; cylinder 0, sector 2
        xor     dh, dh                  ; head 0
        call    read_and_print
        mov     cx, 0x0101              ; cylinder 1, sector 1
        mov     dh, 1                   ; head 1
        call    read_and_print
        mov     si, msg_halt
        call    print
        cli
.forever:
        hlt
        jmp     .forever

; read_and_print: CX/DH = CHS; one sector to 0000:8000, print its text.
read_and_print:
        mov     bx, 0x8000
        mov     dl, [drive]
        mov     ax, 0x0201
        int     0x13
        jc      .error
        mov     si, 0x8000
        call    print
        mov     si, msg_crlf
        jmp     print
.error:
        mov     si, msg_error
        jmp     print

print:
        lodsb
        test    al, al
        jz      .done
        mov     ah, 0x0E
        mov     bx, 0x0007
        int     0x10
        jmp     print
.done:
        ret

print_hex16:
        push    ax
        mov     al, ah
        call    print_hex8
        pop     ax
print_hex8:
        push    ax
        shr     al, 4
        call    .nibble
        pop     ax
.nibble:
        and     al, 0x0F
        add     al, '0'
        cmp     al, '9'
        jbe     .put
        add     al, 7
.put:
        mov     ah, 0x0E
        mov     bx, 0x0007
        int     0x10
        ret

msg_booted      db "EMULATED DRIVE BOOT: drive 0x", 0
msg_error       db "INT 13h read error", 13, 10, 0
msg_geo_cx      db "GEOMETRY CX=", 0
msg_geo_dx      db " DX=", 0
msg_geo_bl      db " BL=", 0
msg_geo_error   db "INT 13h AH=08h error", 13, 10, 0
msg_halt        db "Halted.", 0
msg_crlf        db 13, 10, 0
drive           db 0

        times   0x1BE-($-$$) db 0       ; partition table (builder) and signature
        times   510-($-$$) db 0
        db      0x55, 0xAA
